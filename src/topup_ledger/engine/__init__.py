"""The run's engine: the speed machinery a payment run and the projections need (windows of
what to look at again, shares over the cores, lines spilled to disk, collector pauses),
kept out of the rules."""
