"""Framework tests: one package per backend, the same file names in each
(test_build, test_device, test_export, test_losses, test_train). The
packages keep same-named files apart for pytest."""
