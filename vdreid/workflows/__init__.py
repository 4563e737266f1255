"""What the CLI, tests and examples call: each workflow talks to a Backend,
never to a framework. Import a workflow from its module
(``from vdreid.workflows.export import export_checkpoint``); this package
imports nothing so that importing one workflow does not load the others."""
