"""Launch a wrist RealSense (depth aligned to colour) and the graspseg grasp node.

Documented snippet, not run in CI. Needs ROS 2 Humble or Jazzy with ``realsense2_camera`` 4.x; the node is
``examples/ros2_grasp_node.py`` (run as a plain script, graspseg is not a ROS package)::

    ros2 launch examples/ros2_grasp.launch.py rig_file:=$PWD/rig.yaml prompt:="point:352,280"

The camera's topics are ``/camera/camera/...`` (namespace ``camera``, name ``camera``, as ``rs_launch.py``
names them). Colour and depth run at the same size so that the aligned depth matches the colour image the
rig's intrinsics were calibrated for; no decimation filter (it would shrink the depth image). Older
realsense2_camera 4.x releases call the profiles ``rgb_camera.profile`` and ``depth_module.profile``.
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

NODE_SCRIPT = str(Path(__file__).resolve().parent / "ros2_grasp_node.py")


def generate_launch_description() -> LaunchDescription:
    args = [
        DeclareLaunchArgument("rig_file", description="camera rig YAML from graspseg-calibrate"),
        DeclareLaunchArgument("prompt", default_value="point:320,240", description="point:U,V or box:X0,Y0,X1,Y1"),
        DeclareLaunchArgument("gripper", default_value="franka_hand"),
        DeclareLaunchArgument("base_frame", default_value="panda_link0"),
        DeclareLaunchArgument("tcp_frame", default_value="panda_hand_tcp"),
        DeclareLaunchArgument("profile", default_value="640,480,30", description="width,height,fps of both streams"),
    ]
    camera = Node(
        package="realsense2_camera",
        executable="realsense2_camera_node",
        namespace="camera",
        name="camera",
        output="screen",
        parameters=[{
            "enable_color": True,
            "enable_depth": True,
            "enable_infra1": False,
            "enable_infra2": False,
            "align_depth.enable": True,          # publishes aligned_depth_to_color/image_raw (+ camera_info)
            "enable_sync": True,                 # colour and depth from the same instant
            "rgb_camera.color_profile": LaunchConfiguration("profile"),
            "depth_module.depth_profile": LaunchConfiguration("profile"),
            "rgb_camera.color_format": "RGB8",
            "pointcloud.enable": False,
            "decimation_filter.enable": False,
            "spatial_filter.enable": False,      # filters smear object edges; graspseg models the boundary itself
            "temporal_filter.enable": False,
            "hole_filling_filter.enable": False,  # filled holes are invented depth
            "publish_tf": True,                  # camera_link -> camera_color_optical_frame
        }],
    )
    grasp_node = ExecuteProcess(
        cmd=["python3", NODE_SCRIPT, "--ros-args",
             "-r", "__node:=graspseg_grasp_node",
             "-p", ["rig_file:=", LaunchConfiguration("rig_file")],
             "-p", ["prompt:=", LaunchConfiguration("prompt")],
             "-p", ["gripper:=", LaunchConfiguration("gripper")],
             "-p", ["base_frame:=", LaunchConfiguration("base_frame")],
             "-p", ["tcp_frame:=", LaunchConfiguration("tcp_frame")],
             "-p", "color_topic:=/camera/camera/color/image_raw",
             "-p", "depth_topic:=/camera/camera/aligned_depth_to_color/image_raw",
             "-p", "info_topic:=/camera/camera/color/camera_info"],
        output="screen",
    )
    return LaunchDescription([*args, camera, grasp_node])
