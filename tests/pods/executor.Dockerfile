# The executor image of the pod tests (tests/pods/): the busybox base ("base", a --build-context), and kiln with the
# shared libraries it loads, laid out by scripts/make-executor-context. Built by kiln itself.
FROM base
COPY root/ /
ENV PATH=/kaniko:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
WORKDIR /workspace
ENTRYPOINT ["/kaniko/executor"]
