"""The rule book: events as plain data and the money rules that fold them.

Nothing in this package imports storage, the command line or file formats; it can be read
and tested on its own. See DESIGN.md §3 for the policy each module implements.
"""
