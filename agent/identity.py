"""What the device is (model, serial, firmware), from the configuration or the system.

Sources, in order: the config's overrides; OpenWrt's /etc/openwrt_release and /tmp/sysinfo;
the device tree (/proc/device-tree/model, serial-number); DMI (/sys/class/dmi/id). Whatever
cannot be found is an empty string, which the birth message allows.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import NamedTuple

from agent.config_types import DeviceConfig
from agent.probes.base import host_path, read_text


class Identity(NamedTuple):
    model: str
    serial: str
    firmware: str


def parse_os_release(text: str) -> dict[str, str]:
    """KEY='value' lines as written by OpenWrt's /etc/openwrt_release and /etc/os-release."""
    values = {}
    for line in text.splitlines():
        key, sep, raw = line.partition("=")
        if not sep or not key.strip().isidentifier():
            continue
        try:
            parts = shlex.split(raw, comments=False)
        except ValueError:
            continue
        values[key.strip()] = " ".join(parts)
    return values


def _first(root: Path, *paths: str) -> str:
    for path in paths:
        text = read_text(host_path(root, path))
        if text and text.strip("\x00\n "):
            return text.strip("\x00\n ")[:128]
    return ""


def detect(root: Path = Path("/")) -> Identity:
    model = _first(root, "/tmp/sysinfo/model", "/proc/device-tree/model")
    serial = _first(root, "/proc/device-tree/serial-number", "/sys/class/dmi/id/product_serial")
    if not model:
        vendor = _first(root, "/sys/class/dmi/id/sys_vendor")
        product = _first(root, "/sys/class/dmi/id/product_name")
        model = f"{vendor} {product}".strip()[:128]
    release = read_text(host_path(root, "/etc/openwrt_release"))
    if release:
        info = parse_os_release(release)
        firmware = " ".join(
            info[k] for k in ("DISTRIB_ID", "DISTRIB_RELEASE", "DISTRIB_REVISION") if info.get(k)
        )
    else:
        info = parse_os_release(read_text(host_path(root, "/etc/os-release")) or "")
        firmware = info.get("PRETTY_NAME", "")
        if not firmware and root == Path("/"):
            firmware = f"Linux {os.uname().release}"
    return Identity(model[:128], serial[:128], firmware[:128])


def resolve(device: DeviceConfig, root: Path = Path("/")) -> Identity:
    """The configured values where given, the detected ones otherwise."""
    found = detect(root)
    return Identity(
        model=device.model if device.model is not None else found.model,
        serial=device.serial if device.serial is not None else found.serial,
        firmware=device.firmware if device.firmware is not None else found.firmware,
    )
