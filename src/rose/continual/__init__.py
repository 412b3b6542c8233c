"""Direction 2: several gradient steps per stream batch inside an adaptive ball."""
