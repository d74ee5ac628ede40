"""Great Expectations suites (JSON, in suites/) and the function that runs them."""
