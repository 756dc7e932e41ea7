"""Local stack for the demo, the UI and the whole-DAG tests."""
