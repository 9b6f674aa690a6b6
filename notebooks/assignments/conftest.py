"""pytest (nbval) runs only the source notebooks here, never nbgrader's generated student versions or submissions."""

collect_ignore_glob = ["release/*", "submitted/*", "autograded/*", "feedback/*", "exchange/*"]
