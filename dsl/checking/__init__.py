"""The check stage: from parsed files to the checked model, and the diagnostics' text.

``passes`` (the named, ordered checks and ``build``), ``loader`` (policy files found and
parsed), ``config`` and ``tomlpos`` (policy.toml and where its keys stand), ``suppress``
(``# policy: ignore`` comments), ``frontend`` (``compile_paths``: load, configure, check)
and ``render`` (diagnostics as text, JSON or SARIF). Named ``checking`` so that it does not
shadow the public function ``dsl.check``."""
