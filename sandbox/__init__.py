"""Local stand-ins for the vendor APIs the lead flow talks to."""
