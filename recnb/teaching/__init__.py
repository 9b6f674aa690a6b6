"""What the notebooks and the course use on top of the library.

- ``widgets``: the recommendation and attention explorers of notebook 09;
- ``environment``: the environment report and widget check of notebook 00;
- ``benchmark``: time training steps under each precision (notebook 07 and the README);
- ``training_logs``: read the logs of ``python -m recnb train`` runs;
- ``checks``: the assignments' checks, one module per assignment;
- ``assignments``: build the students' release of the assignments.

Import rule: ``recnb.teaching`` may use every layer below it, and nothing imports it but the command line.
"""
