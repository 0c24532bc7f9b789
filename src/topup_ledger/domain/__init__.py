"""The rule book: events as plain data and the money rules that fold them.

Nothing in this package imports storage, the command line or file formats; it can be read
and tested on its own. docs/rules.md states the policy each module implements, a section
each, with worked examples.
"""
