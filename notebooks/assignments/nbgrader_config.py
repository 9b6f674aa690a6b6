"""nbgrader settings for the recnb assignments: run every nbgrader command from this folder.

The course folder is this one: source/ holds the assignments (solutions, visible checks,
hidden tests, model answers); nbgrader writes release/, submitted/, autograded/, feedback/, gradebook.db
and grades.csv beside it (all ignored by git, see .gitignore). README.md is the guide.
"""

c = get_config()  # noqa: F821 - nbgrader provides get_config when it reads this file

c.CourseDirectory.course_id = "recnb"

# What replaces a solution region in the student version. The checks in recnb.teaching.checks
# recognise the bare NotImplementedError() and say "not answered yet" instead of failing.
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Seconds per cell when validating and autograding (the checks take a few seconds on a laptop,
# a6's training cell about a minute).
c.Execute.timeout = 300

# Where release_assignment / fetch_assignment / submit / collect exchange files. nbgrader's
# default is /usr/local/share/nbgrader/exchange (needs root to create); on a shared machine
# point every user at one writable folder instead, e.g.:
# c.Exchange.root = "/srv/nbgrader/exchange"

# Feedback shows each check's output but not the hidden tests' code, so the same assignments
# can be set again next term (the checks never print a hidden input: recnb/checks/_core.py).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests, GetGrades  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
