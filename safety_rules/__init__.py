"""Safety rules: one module per rule, each with a stable ``HM`` code."""
