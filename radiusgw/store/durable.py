"""Making a directory entry durable: the one ``fsync`` of a directory in the package.

A file created, renamed or removed survives a power cut only once its directory is synced
(POSIX leaves it to the directory's own ``fsync``; Linux ext4 and xfs honour it). The journal
syncs its directory when a segment is made or pruned, the key file's writer after the rename
that puts the key in place.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """``fsync`` the directory; an I/O error raises ``OSError``. A filesystem that cannot sync a
    directory at all (EINVAL, ENOTSUP: some network and FUSE filesystems) is let be: the files
    themselves are synced, and nothing more can be done there."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)
