"""Records, subjects, collections and policies: pure logic and the ports it needs."""
