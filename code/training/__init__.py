"""Training hearing-aid models through the simulated listener (issue 22): a differentiable
intelligibility objective (``objective``) and the training stage (``train``)."""
