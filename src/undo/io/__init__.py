"""Files that are whole or absent, secrets, and the network: the bottom layer, with undo.errors and undo.params."""
