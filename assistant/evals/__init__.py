"""Evaluations run on a team's own labelled questions (`assistant eval ...`).

Every evaluation goes through the Assistant's public turn path (`ask`, `prepare`,
`with_settings`, `turns`, ...), never a copy of a step of it. The metrics and report
plots come with the eval extra (`pip install 'assistant[eval]'`) and are imported
only where they are used; reading QA files, fitting-free measures and human review
(`review`) need nothing beyond a plain install.
"""
