"""Use cases: recording facts, paying a period, importing, sealing, the demo."""
