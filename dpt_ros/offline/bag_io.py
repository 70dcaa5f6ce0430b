"""rosbags plumbing for the bag tool: storage formats, copied connections, output connections.

Messages are (de)serialised with rclpy (see bag.py); rosbags only moves raw CDR bytes, so
the output bag holds exactly the bytes `rclpy.serialization.serialize_message` produced.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rosbags.interfaces import Connection, ConnectionExtRosbag2
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, TypesysError, get_typestore
from rosbags.typesys.store import Typestore

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
BAG_VERSION = 8  # what ROS 2 Jazzy's rosbag2 writes and reads


@lru_cache(maxsize=1)
def typestore() -> Typestore:
    """Jazzy message definitions and RIHS01 hashes (they match the installed sensor_msgs)."""
    return get_typestore(Stores.ROS2_JAZZY)


def input_storage(path: Path) -> str:
    """'mcap' or 'sqlite3' for a bag directory or a bare .mcap/.db3 file."""
    if path.is_file():
        return "mcap" if path.suffix == ".mcap" else "sqlite3"
    return "mcap" if any(path.glob("*.mcap")) else "sqlite3"


def open_writer(path: Path, storage: str) -> Writer:
    """An opened rosbags writer creating the bag directory `path` (which must not exist)."""
    writer = Writer(path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
    writer.open()
    return writer


def copy_connections(writer: Writer, connections: list[Connection]) -> dict[int, Connection]:
    """Output connections for the input ones (input id -> output), definitions and QoS kept.

    Input connections that differ only in id (a topic recorded in several sessions) share
    one output connection. Connections whose definition is unknown (very old bags without
    message definitions, custom types) are left out of the map: they cannot be re-described.
    """
    out: dict[int, Connection] = {}
    seen: dict[tuple, Connection] = {}
    for conn in connections:
        ext = conn.ext
        fmt = ext.serialization_format if isinstance(ext, ConnectionExtRosbag2) else "cdr"
        qos = list(ext.offered_qos_profiles) if isinstance(ext, ConnectionExtRosbag2) else []
        key = (conn.topic, conn.msgtype, fmt, repr(qos))
        if key not in seen:
            msgdef, digest = conn.msgdef.data, conn.digest
            if not msgdef or not digest:
                try:
                    msgdef, _ = typestore().generate_msgdef(conn.msgtype, ros_version=2)
                    digest = typestore().hash_rihs01(conn.msgtype)
                except (KeyError, TypesysError):  # a type this typestore does not know
                    continue
            seen[key] = writer.add_connection(
                conn.topic,
                conn.msgtype,
                msgdef=msgdef,
                rihs01=digest,
                serialization_format=fmt,
                offered_qos_profiles=qos,
            )
        out[conn.id] = seen[key]
    return out


def add_output_connection(writer: Writer, topic: str, msgtype: str) -> Connection:
    """A CDR connection for one of the node's output topics."""
    return writer.add_connection(topic, msgtype, typestore=typestore())
