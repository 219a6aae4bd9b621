"""Starting, stopping and breaking the stack: native (supervisord) and fault control."""
