"""Command-line interface ``delssome-norms``: subcommands that only call the public API."""
