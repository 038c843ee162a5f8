"""Running changelake locally: a local AWS endpoint, the template deployed to it, the functions in-process."""
