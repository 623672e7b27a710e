"""Reference implementations copied from other projects, used only by tests to cross-check ours."""
