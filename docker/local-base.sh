#!/usr/bin/env bash
# The local base image, for machines that reach Debian's archive but no container registry:
# Debian bookworm (minbase) + python3.11 + venv, built with debootstrap and `docker import`.
# It stands in for the official python:3.11 image the Dockerfiles default to (same Debian, same CPython
# minor version as the wheels), so both Dockerfiles build unchanged on top of it.
#
# Also downloads the tasks image's system packages (git, openssh-client), resolved by apt against this
# very base, into DEBS_DIR: Dockerfile.tasks installs them offline from there.
#
#   docker/local-base.sh TAG DEBS_DIR        (the Makefile names TAG after a hash of this file)
set -euo pipefail
tag=$1
debs=$2
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(dirname "$debs")/rootfs
rm -rf "$work" && mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

debootstrap --variant=minbase --include=python3.11,python3-venv,ca-certificates bookworm "$work" "$mirror"
cp /etc/resolv.conf "$work/etc/resolv.conf"
chroot "$work" apt-get clean  # debootstrap's own downloads: only the new ones go to DEBS_DIR
chroot "$work" apt-get install --yes --quiet --download-only --no-install-recommends git openssh-client
rm -rf "$debs" && mkdir -p "$debs"
mv "$work"/var/cache/apt/archives/*.deb "$debs/"
chroot "$work" apt-get clean  # and apt's package caches: nothing installs from this base at run time
rm -rf "$work"/var/lib/apt/lists/* "$work"/etc/resolv.conf
: > "$work/etc/resolv.conf"

tar --numeric-owner -C "$work" -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --message "debootstrap bookworm minbase + python3.11 ($(basename "$0"))" - "$tag"
