"""The event store behind a small interface (SQLite or PostgreSQL), its pages, the plans'
streams, upcasting of older events, and the hash chain that links stored rows."""
