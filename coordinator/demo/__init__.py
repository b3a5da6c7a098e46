"""`npcs demo`: a whole partnership on this machine, and the showcase questions it asks."""
