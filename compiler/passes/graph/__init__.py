"""Graph-IR passes: one per module, registered under the module's file name."""
