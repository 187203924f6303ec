"""What people use, on top of everything else: figures (`viz`, `contours`), whole videos
(`video`), the notebooks' explorers (`widgets`), the reviewers' app (`app`) and the command
line (`cli`)."""
