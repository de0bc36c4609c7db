"""The daily rows every read of spend goes through, their exact incremental rollups, and key links."""
