"""Great Expectations suites as JSON files, and the loader that runs them on a batch."""
