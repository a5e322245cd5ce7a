"""A ROS 2 node that plans grasps for a prompted object seen by a wrist RealSense camera.

Documented example, not run in CI (it needs a ROS 2 Humble or Jazzy installation with ``rclpy``,
``message_filters``, ``tf2_ros``, ``rosidl_runtime_py`` and ``moveit_msgs``; graspseg itself needs none of
them). See ``docs/ros2.md`` and ``examples/ros2_grasp.launch.py``.

What it does, per synchronised frame:

1. subscribes to the colour image, the depth image aligned to it and the colour ``camera_info`` of
   ``realsense2_camera`` (``align_depth.enable: true``), matched by ``message_filters.ApproximateTimeSynchronizer``;
2. looks up ``base_from_tcp`` at the image's stamp in tf2 (``lookup_transform(base_frame, tcp_frame, stamp)``);
3. builds an :class:`~graspseg.core.frame.RGBDFrame` (:func:`graspseg.ros.frame_from_ros`, depth scale from the
   rig file) and calls :meth:`GraspPerception.plan` with the prompt parameter;
4. publishes, in the robot's base frame:

   - ``~/grasp_poses`` (``geometry_msgs/msg/PoseArray``): the grasp frames, best first (fingertip centre,
     +z approach, +x closing);
   - ``~/grasps`` (``moveit_msgs/msg/Grasp``, one message per grasp, best first): TCP target as
     ``grasp_pose``, finger postures, approach and retreat;
   - ``~/status`` (``std_msgs/msg/String``): JSON with the status, rejection counts and suggestion;
   - the TF ``base_frame`` → ``grasp_frame`` of the best grasp.

Parameters (``--ros-args -p name:=value``):

``rig_file`` (required)
    Camera rig YAML from ``graspseg-calibrate`` (intrinsics, ``tcp_from_camera``, depth scale).
``prompt`` (default ``point:320,240``)
    ``point:U,V`` (several: ``point:U,V;U,V``) or ``box:X0,Y0,X1,Y1``, pixels of the colour image.
``gripper`` (default ``franka_hand``)
    Shipped gripper name or a gripper YAML path.
``base_frame``, ``tcp_frame`` (default ``panda_link0``, ``panda_hand_tcp``)
    tf frames of graspseg's ``base`` and ``tcp``; ``tcp_frame`` must be the frame ``tcp_from_camera`` was
    calibrated against.
``grasp_frame`` (default ``graspseg_grasp``)
    Child frame of the best grasp's TF.
``color_topic``, ``depth_topic``, ``info_topic``
    Default ``/camera/camera/color/image_raw``, ``/camera/camera/aligned_depth_to_color/image_raw``,
    ``/camera/camera/color/camera_info`` (realsense2_camera 4.x under namespace and name ``camera``).
``max_grasps`` (default 5), ``min_period_s`` (default 1.0: plan at most once a second),
``allowed_touch_objects`` (default ``[]``: collision-object ids the hand may touch).

Run::

    source /opt/ros/humble/setup.bash
    python3 examples/ros2_grasp_node.py --ros-args -p rig_file:=rig.yaml -p prompt:="point:352,280"
"""

from __future__ import annotations

import json
import sys

import numpy as np

from graspseg.segment import Prompt


def parse_prompt(text: str) -> Prompt:
    """``point:U,V[;U,V...]`` or ``box:X0,Y0,X1,Y1`` (pixels) as a :class:`Prompt`."""
    kind, _, rest = text.partition(":")
    try:
        if kind == "point":
            pts = [[float(x) for x in p.split(",")] for p in rest.split(";") if p.strip()]
            if not pts or any(len(p) != 2 for p in pts):
                raise ValueError
            return Prompt(points_uv=np.array(pts), point_labels=[1] * len(pts))
        if kind == "box":
            x0, y0, x1, y1 = (float(x) for x in rest.split(","))
            return Prompt.from_box(x0, y0, x1, y1)
    except ValueError:
        pass
    raise ValueError(f"prompt parameter {text!r}: use 'point:U,V' (';' between points) or 'box:X0,Y0,X1,Y1'")


def stamp_seconds(stamp) -> float:
    """A ``builtin_interfaces/msg/Time`` as seconds."""
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def main(argv: list[str] | None = None) -> int:
    import message_filters
    import rclpy
    import tf2_ros
    from geometry_msgs.msg import PoseArray, TransformStamped
    from moveit_msgs.msg import Grasp
    from rclpy.duration import Duration
    from rclpy.node import Node
    from rclpy.time import Time
    from rosidl_runtime_py import set_message_fields
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import String

    from graspseg import ros
    from graspseg.core.camera import CameraRig
    from graspseg.core.transform import CAMERA
    from graspseg.plugin import GraspPerception

    class GraspNode(Node):
        def __init__(self) -> None:
            super().__init__("graspseg_grasp_node")
            p = {name: self.declare_parameter(name, default).value for name, default in (
                ("rig_file", ""), ("prompt", "point:320,240"), ("gripper", "franka_hand"),
                ("base_frame", "panda_link0"), ("tcp_frame", "panda_hand_tcp"), ("grasp_frame", "graspseg_grasp"),
                ("color_topic", "/camera/camera/color/image_raw"),
                ("depth_topic", "/camera/camera/aligned_depth_to_color/image_raw"),
                ("info_topic", "/camera/camera/color/camera_info"),
                ("max_grasps", 5), ("min_period_s", 1.0), ("allowed_touch_objects", [""]))}
            if not p["rig_file"]:
                raise SystemExit("set the rig_file parameter: the camera rig YAML written by graspseg-calibrate")
            self.params = p
            self.prompt = parse_prompt(p["prompt"])
            self.rig = CameraRig.load_yaml(p["rig_file"])
            self.perception = GraspPerception(rig=self.rig, gripper=p["gripper"])
            self.touch = [x for x in p["allowed_touch_objects"] if x]
            self.last_plan_s = -float("inf")

            self.tf_buffer = tf2_ros.Buffer()
            self.tf_listener = tf2_ros.TransformListener(self.tf_buffer, self)
            self.tf_broadcaster = tf2_ros.TransformBroadcaster(self)
            self.pub_poses = self.create_publisher(PoseArray, "~/grasp_poses", 1)
            self.pub_grasps = self.create_publisher(Grasp, "~/grasps", 10)
            self.pub_status = self.create_publisher(String, "~/status", 1)
            subs = [message_filters.Subscriber(self, Image, p["color_topic"]),
                    message_filters.Subscriber(self, Image, p["depth_topic"]),
                    message_filters.Subscriber(self, CameraInfo, p["info_topic"])]
            self.sync = message_filters.ApproximateTimeSynchronizer(subs, queue_size=5, slop=0.05)
            self.sync.registerCallback(self.on_frame)
            self.get_logger().info(f"graspseg: prompt {p['prompt']}, gripper {self.perception.gripper.name}, "
                                   f"poses in {p['base_frame']}")

        def on_frame(self, color: Image, depth: Image, info: CameraInfo) -> None:
            now_s = self.get_clock().now().nanoseconds * 1e-9
            if now_s - self.last_plan_s < self.params["min_period_s"]:
                return
            self.last_plan_s = now_s
            stamp = Time.from_msg(color.header.stamp)
            frame_ids = {"base": self.params["base_frame"], "tcp": self.params["tcp_frame"],
                         CAMERA: info.header.frame_id, "grasp": self.params["grasp_frame"]}
            try:
                tf = self.tf_buffer.lookup_transform(self.params["base_frame"], self.params["tcp_frame"], stamp,
                                                     timeout=Duration(seconds=0.1))
            except tf2_ros.TransformException as e:
                self.get_logger().warning(f"no {self.params['base_frame']} <- {self.params['tcp_frame']} at the "
                                          f"image stamp, skipping the frame: {e}")
                return
            base_from_tcp = ros.transform_from_ros(tf, frame_ids=frame_ids)
            stamp_s = stamp_seconds(color.header.stamp)
            try:
                frame = ros.frame_from_ros(color, depth, info, depth_scale_m=self.rig.depth_scale,
                                           base_from_tcp=base_from_tcp, frame_id=f"{stamp_s:.3f}")
                response = self.perception.plan(frame, self.prompt, max_grasps=self.params["max_grasps"],
                                                base_from_tcp=base_from_tcp)
                out = ros.response_to_ros(response, self.perception.gripper, stamp_s, frame_ids=frame_ids,
                                          allowed_touch_objects=self.touch)
            except ValueError as e:  # graspseg's typed errors derive from ValueError (bad prompt, bad image)
                self.get_logger().error(f"graspseg: {e}")
                return

            self.pub_status.publish(String(data=json.dumps({
                "status": out["status"], "frame_id": out["frame_id"], "n_grasps": len(out["grasps"]),
                "rejected_counts": out["rejected_counts"], "suggestion": out["suggestion"]})))
            poses = PoseArray()
            set_message_fields(poses, out["pose_array"])
            self.pub_poses.publish(poses)
            for d in out["grasps"]:
                msg = Grasp()
                set_message_fields(msg, d)
                self.pub_grasps.publish(msg)
            if response.grasps:
                tf_msg = TransformStamped()
                set_message_fields(tf_msg, ros.transform_stamped(response.grasps[0].grasp_pose, stamp_s,
                                                                 frame_ids=frame_ids))
                self.tf_broadcaster.sendTransform(tf_msg)
                best = response.grasps[0]
                self.get_logger().info(f"graspseg: {len(out['grasps'])} grasp(s); best worst-case margin "
                                       f"{best.worst_case_margin_mm:.1f} mm, opening {best.opening_m * 1e3:.1f} mm")
            else:
                self.get_logger().warning(f"graspseg: no grasp: {response.suggestion}")

    rclpy.init(args=argv)
    node = GraspNode()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
