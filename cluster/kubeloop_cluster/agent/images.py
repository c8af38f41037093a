"""Images are not pulled on the local node: an image name maps to the command its Dockerfile would run.

A container that names its `command` runs exactly that (with the project's virtualenv first on PATH, so
`kubeloop-trainer`, `kubeloop-operator` and `python` are the project's own). A container without a command gets
the ENTRYPOINT of the image, looked up here by repository (tag and digest ignored).
"""

ENTRYPOINTS: dict[str, list[str]] = {
    # trainer-image/Dockerfile: ENTRYPOINT ["kubeloop-trainer"]
    "ghcr.io/kubeloop/trainer": ["kubeloop-trainer"],
    # the operator image: ENTRYPOINT ["kubeloop-operator"]
    "ghcr.io/kubeloop/operator": ["kubeloop-operator"],
    # official Python images, for ad-hoc pods and tests
    "python": ["python3"],
    "docker.io/library/python": ["python3"],
}
