"""``tessera demo``: the App, a seeded store and the fake GitHub it talks to, in one process."""
