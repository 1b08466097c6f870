"""Evaluations run on a team's own labelled questions (`assistant eval ...`)."""
