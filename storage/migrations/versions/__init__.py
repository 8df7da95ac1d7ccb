"""The schema's revisions, in order; each says what it changes."""
