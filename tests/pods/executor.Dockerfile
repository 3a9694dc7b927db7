# The executor image of the pod tests (tests/pods/): the Debian base ("base", a --build-context: minbase, made with
# debootstrap by tests/support/debian_base.cpp), and kiln with the shared libraries it loads, laid out by
# scripts/make-executor-context. Built by kiln itself.
FROM base
COPY root/ /
# A non-root pod's user, with subordinate ids, and newuidmap/newgidmap with file capabilities instead of the
# setuid bit, which does not work in a container without CAP_SYS_ADMIN (../shared/research/sandbox.md §5).
RUN groupadd -g 1000 builder && useradd -l -m -u 1000 -g builder -s /bin/sh builder \
    && echo 'builder:100000:65536' > /etc/subuid && echo 'builder:100000:65536' > /etc/subgid \
    && setcap cap_setuid+ep /usr/bin/newuidmap && setcap cap_setgid+ep /usr/bin/newgidmap
ENV PATH=/kaniko:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
WORKDIR /workspace
ENTRYPOINT ["/kaniko/executor"]
