/*
 * The engine's request structs (Engine API 1.41 to 1.47), from moby's
 * api/types: container Config, HostConfig (with Resources), mount.Mount,
 * NetworkingConfig, UpdateConfig, ExecConfig, volume and network create.
 * A field listed here is known; whether it is allowed is decided in
 * create.c, mounts.c and objects.c. JF_PBOOL and JF_PINT are Go pointers
 * (*bool, *int64): their zero is not the engine's "absent". In schemas
 * marked zero_drop, a plain field's zero value (0, "", false) is left out
 * of the canonical body: the engine decodes the same struct without it.
 */
#include "config.h"

#include <stddef.h>

#include "policy-int.h"

#define NF(a)	(sizeof(a) / sizeof((a)[0]))

static const struct jf_field driver_config_fields[] = {
	{ "Name", JF_STR, NULL },
	{ "Options", JF_STRMAP, NULL },
};
static struct jf_lookup schema_driver_config_lookup;
static const struct jf_schema schema_driver_config = {
	"DriverConfig", driver_config_fields, NF(driver_config_fields), 1,
	&schema_driver_config_lookup, 0
};

static const struct jf_field bind_options_fields[] = {
	{ "Propagation", JF_STR, NULL },
	{ "NonRecursive", JF_BOOL, NULL },
	{ "CreateMountpoint", JF_BOOL, NULL },
	{ "ReadOnlyNonRecursive", JF_BOOL, NULL },
	{ "ReadOnlyForceRecursive", JF_BOOL, NULL },
};
static struct jf_lookup schema_bind_options_lookup;
static const struct jf_schema schema_bind_options = {
	"BindOptions", bind_options_fields, NF(bind_options_fields), 1,
	&schema_bind_options_lookup, 0
};

static const struct jf_field volume_options_fields[] = {
	{ "NoCopy", JF_BOOL, NULL },
	{ "Labels", JF_STRMAP, NULL },
	{ "Subpath", JF_STR, NULL },
	{ "DriverConfig", JF_OBJ, &schema_driver_config },
};
static struct jf_lookup schema_volume_options_lookup;
static const struct jf_schema schema_volume_options = {
	"VolumeOptions", volume_options_fields, NF(volume_options_fields), 1,
	&schema_volume_options_lookup, 0
};

static const struct jf_field tmpfs_options_fields[] = {
	{ "SizeBytes", JF_INT, NULL },
	{ "Mode", JF_UINT, NULL },
	{ "Options", JF_ANY, NULL },
};
static struct jf_lookup schema_tmpfs_options_lookup;
static const struct jf_schema schema_tmpfs_options = {
	"TmpfsOptions", tmpfs_options_fields, NF(tmpfs_options_fields), 1,
	&schema_tmpfs_options_lookup, 0
};

static const struct jf_field mount_fields[] = {
	{ "Type", JF_STR, NULL },
	{ "Source", JF_STR, NULL },
	{ "Target", JF_STR, NULL },
	{ "ReadOnly", JF_BOOL, NULL },
	{ "Consistency", JF_STR, NULL },
	{ "BindOptions", JF_OBJ, &schema_bind_options },
	{ "VolumeOptions", JF_OBJ, &schema_volume_options },
	{ "TmpfsOptions", JF_OBJ, &schema_tmpfs_options },
	{ "ClusterOptions", JF_ANY, NULL },
};
static struct jf_lookup schema_mount_lookup;
const struct jf_schema schema_mount = {
	"Mount", mount_fields, NF(mount_fields), 1,
	&schema_mount_lookup, 0
};

static const struct jf_field log_config_fields[] = {
	{ "Type", JF_STR, NULL },
	{ "Config", JF_STRMAP, NULL },
};
static struct jf_lookup schema_log_config_lookup;
static const struct jf_schema schema_log_config = {
	"LogConfig", log_config_fields, NF(log_config_fields), 1,
	&schema_log_config_lookup, 1
};

static const struct jf_field restart_fields[] = {
	{ "Name", JF_STR, NULL },
	{ "MaximumRetryCount", JF_INT, NULL },
};
static struct jf_lookup schema_restart_lookup;
static const struct jf_schema schema_restart = {
	"RestartPolicy", restart_fields, NF(restart_fields), 1,
	&schema_restart_lookup, 1
};

static const struct jf_field port_binding_fields[] = {
	{ "HostIp", JF_STR, NULL },
	{ "HostPort", JF_STR, NULL },
};
static struct jf_lookup schema_port_binding_lookup;
static const struct jf_schema schema_port_binding = {
	"PortBinding", port_binding_fields, NF(port_binding_fields), 1,
	&schema_port_binding_lookup, 0
};

/* Resources (embedded in HostConfig, and UpdateConfig). */
#define RESOURCES_FIELDS \
	{ "CpuShares", JF_INT, NULL }, \
	{ "Memory", JF_INT, NULL }, \
	{ "NanoCpus", JF_INT, NULL }, \
	{ "CgroupParent", JF_STR, NULL }, \
	{ "BlkioWeight", JF_UINT, NULL }, \
	{ "BlkioWeightDevice", JF_ANY, NULL }, \
	{ "BlkioDeviceReadBps", JF_ANY, NULL }, \
	{ "BlkioDeviceWriteBps", JF_ANY, NULL }, \
	{ "BlkioDeviceReadIOps", JF_ANY, NULL }, \
	{ "BlkioDeviceWriteIOps", JF_ANY, NULL }, \
	{ "CpuPeriod", JF_INT, NULL }, \
	{ "CpuQuota", JF_INT, NULL }, \
	{ "CpuRealtimePeriod", JF_INT, NULL }, \
	{ "CpuRealtimeRuntime", JF_INT, NULL }, \
	{ "CpusetCpus", JF_STR, NULL }, \
	{ "CpusetMems", JF_STR, NULL }, \
	{ "Devices", JF_ANY, NULL }, \
	{ "DeviceCgroupRules", JF_STRLIST, NULL }, \
	{ "DeviceRequests", JF_ANY, NULL }, \
	{ "KernelMemory", JF_INT, NULL }, \
	{ "KernelMemoryTCP", JF_INT, NULL }, \
	{ "MemoryReservation", JF_INT, NULL }, \
	{ "MemorySwap", JF_INT, NULL }, \
	{ "MemorySwappiness", JF_PINT, NULL }, \
	{ "OomKillDisable", JF_PBOOL, NULL }, \
	{ "PidsLimit", JF_PINT, NULL }, \
	{ "Ulimits", JF_ANY, NULL }, \
	{ "CpuCount", JF_INT, NULL }, \
	{ "CpuPercent", JF_INT, NULL }, \
	{ "IOMaximumIOps", JF_UINT, NULL }, \
	{ "IOMaximumBandwidth", JF_UINT, NULL }

static const struct jf_field hostconfig_fields[] = {
	{ "Binds", JF_STRLIST, NULL },
	{ "ContainerIDFile", JF_STR, NULL },
	{ "LogConfig", JF_OBJ, &schema_log_config },
	{ "NetworkMode", JF_STR, NULL },
	{ "PortBindings", JF_OBJLISTMAP, &schema_port_binding },
	{ "RestartPolicy", JF_OBJ, &schema_restart },
	{ "AutoRemove", JF_BOOL, NULL },
	{ "VolumeDriver", JF_STR, NULL },
	{ "VolumesFrom", JF_STRLIST, NULL },
	{ "ConsoleSize", JF_UINT2, NULL },
	{ "Annotations", JF_STRMAP, NULL },
	{ "CapAdd", JF_STRSLICE, NULL },
	{ "CapDrop", JF_STRSLICE, NULL },
	{ "CgroupnsMode", JF_STR, NULL },
	{ "Dns", JF_STRLIST, NULL },
	{ "DnsOptions", JF_STRLIST, NULL },
	{ "DnsSearch", JF_STRLIST, NULL },
	{ "ExtraHosts", JF_STRLIST, NULL },
	{ "GroupAdd", JF_STRLIST, NULL },
	{ "IpcMode", JF_STR, NULL },
	{ "Cgroup", JF_STR, NULL },
	{ "Links", JF_STRLIST, NULL },
	{ "OomScoreAdj", JF_INT, NULL },
	{ "PidMode", JF_STR, NULL },
	{ "Privileged", JF_BOOL, NULL },
	{ "PublishAllPorts", JF_BOOL, NULL },
	{ "ReadonlyRootfs", JF_BOOL, NULL },
	{ "SecurityOpt", JF_STRLIST, NULL },
	{ "StorageOpt", JF_STRMAP, NULL },
	{ "Tmpfs", JF_STRMAP, NULL },
	{ "UTSMode", JF_STR, NULL },
	{ "UsernsMode", JF_STR, NULL },
	{ "ShmSize", JF_INT, NULL },
	{ "Sysctls", JF_STRMAP, NULL },
	{ "Runtime", JF_STR, NULL },
	{ "Isolation", JF_STR, NULL },
	RESOURCES_FIELDS,
	{ "Mounts", JF_OBJLIST, &schema_mount },
	{ "MaskedPaths", JF_STRLIST, NULL },
	{ "ReadonlyPaths", JF_STRLIST, NULL },
	{ "Init", JF_PBOOL, NULL },
};
static struct jf_lookup schema_hostconfig_lookup;
const struct jf_schema schema_hostconfig = {
	"HostConfig", hostconfig_fields, NF(hostconfig_fields), 1,
	&schema_hostconfig_lookup, 1
};

static const struct jf_field config_fields[] = {
	{ "Hostname", JF_STR, NULL },
	{ "Domainname", JF_STR, NULL },
	{ "User", JF_STR, NULL },
	{ "AttachStdin", JF_BOOL, NULL },
	{ "AttachStdout", JF_BOOL, NULL },
	{ "AttachStderr", JF_BOOL, NULL },
	{ "ExposedPorts", JF_SET, NULL },
	{ "Tty", JF_BOOL, NULL },
	{ "OpenStdin", JF_BOOL, NULL },
	{ "StdinOnce", JF_BOOL, NULL },
	{ "Env", JF_STRLIST, NULL },
	{ "Cmd", JF_STRSLICE, NULL },
	{ "Healthcheck", JF_ANY, NULL },
	{ "ArgsEscaped", JF_BOOL, NULL },
	{ "Image", JF_STR, NULL },
	{ "Volumes", JF_SET, NULL },
	{ "WorkingDir", JF_STR, NULL },
	{ "Entrypoint", JF_STRSLICE, NULL },
	{ "NetworkDisabled", JF_BOOL, NULL },
	{ "MacAddress", JF_STR, NULL },
	{ "OnBuild", JF_STRLIST, NULL },
	{ "Labels", JF_STRMAP, NULL },
	{ "StopSignal", JF_STR, NULL },
	{ "StopTimeout", JF_PINT, NULL },
	{ "Shell", JF_STRSLICE, NULL },
};
static struct jf_lookup schema_config_lookup;
const struct jf_schema schema_config = {
	"Config", config_fields, NF(config_fields), 1,
	&schema_config_lookup, 1
};

static const struct jf_field endpoint_fields[] = {
	{ "IPAMConfig", JF_ANY, NULL },
	{ "Links", JF_STRLIST, NULL },
	{ "Aliases", JF_STRLIST, NULL },
	{ "MacAddress", JF_STR, NULL },
	{ "DriverOpts", JF_STRMAP, NULL },
	{ "GwPriority", JF_INT, NULL },
	{ "NetworkID", JF_STR, NULL },
	{ "EndpointID", JF_STR, NULL },
	{ "Gateway", JF_STR, NULL },
	{ "IPAddress", JF_STR, NULL },
	{ "IPPrefixLen", JF_INT, NULL },
	{ "IPv6Gateway", JF_STR, NULL },
	{ "GlobalIPv6Address", JF_STR, NULL },
	{ "GlobalIPv6PrefixLen", JF_INT, NULL },
	{ "DNSNames", JF_STRLIST, NULL },
};
static struct jf_lookup schema_endpoint_lookup;
static const struct jf_schema schema_endpoint = {
	"EndpointSettings", endpoint_fields, NF(endpoint_fields), 1,
	&schema_endpoint_lookup, 0
};

static const struct jf_field networking_fields[] = {
	{ "EndpointsConfig", JF_OBJMAP, &schema_endpoint },
};
static struct jf_lookup schema_networking_lookup;
const struct jf_schema schema_networking = {
	"NetworkingConfig", networking_fields, NF(networking_fields), 1,
	&schema_networking_lookup, 0
};

static const struct jf_field update_fields[] = {
	RESOURCES_FIELDS,
	{ "RestartPolicy", JF_OBJ, &schema_restart },
};
static struct jf_lookup schema_update_lookup;
const struct jf_schema schema_update = {
	"UpdateConfig", update_fields, NF(update_fields), 1,
	&schema_update_lookup, 0
};

static const struct jf_field exec_fields[] = {
	{ "User", JF_STR, NULL },
	{ "Privileged", JF_BOOL, NULL },
	{ "Tty", JF_BOOL, NULL },
	{ "ConsoleSize", JF_UINT2, NULL },
	{ "AttachStdin", JF_BOOL, NULL },
	{ "AttachStderr", JF_BOOL, NULL },
	{ "AttachStdout", JF_BOOL, NULL },
	{ "Detach", JF_BOOL, NULL },
	{ "DetachKeys", JF_STR, NULL },
	{ "Env", JF_STRLIST, NULL },
	{ "WorkingDir", JF_STR, NULL },
	{ "Cmd", JF_STRLIST, NULL },	/* []string: no strslice here */
};
static struct jf_lookup schema_exec_lookup;
const struct jf_schema schema_exec = {
	"ExecConfig", exec_fields, NF(exec_fields), 1,
	&schema_exec_lookup, 0
};

static const struct jf_field volume_create_fields[] = {
	{ "Name", JF_STR, NULL },
	{ "Driver", JF_STR, NULL },
	{ "DriverOpts", JF_STRMAP, NULL },
	{ "Labels", JF_STRMAP, NULL },
	{ "ClusterVolumeSpec", JF_ANY, NULL },
};
static struct jf_lookup schema_volume_create_lookup;
const struct jf_schema schema_volume_create = {
	"VolumeCreate", volume_create_fields, NF(volume_create_fields), 1,
	&schema_volume_create_lookup, 0
};

static const struct jf_field network_create_fields[] = {
	{ "Name", JF_STR, NULL },
	{ "CheckDuplicate", JF_BOOL, NULL },
	{ "Driver", JF_STR, NULL },
	{ "Scope", JF_STR, NULL },
	{ "EnableIPv4", JF_PBOOL, NULL },
	{ "EnableIPv6", JF_PBOOL, NULL },
	{ "IPAM", JF_ANY, NULL },
	{ "Internal", JF_BOOL, NULL },
	{ "Attachable", JF_BOOL, NULL },
	{ "Ingress", JF_BOOL, NULL },
	{ "ConfigOnly", JF_BOOL, NULL },
	{ "ConfigFrom", JF_ANY, NULL },
	{ "Options", JF_STRMAP, NULL },
	{ "Labels", JF_STRMAP, NULL },
};
static struct jf_lookup schema_network_create_lookup;
const struct jf_schema schema_network_create = {
	"NetworkCreate", network_create_fields, NF(network_create_fields), 1,
	&schema_network_create_lookup, 0
};

/* The create body's wrapper fields (runconfig ContainerConfigWrapper). */
static const struct jf_field create_wrapper_fields[] = {
	{ "HostConfig", JF_OBJ, &schema_hostconfig },
	{ "NetworkingConfig", JF_OBJ, &schema_networking },
	{ "Cpuset", JF_STR, NULL },
};
static struct jf_lookup schema_create_wrapper_lookup;
const struct jf_schema schema_create_wrapper = {
	"ContainerConfigWrapper", create_wrapper_fields,
	NF(create_wrapper_fields), 1, &schema_create_wrapper_lookup, 0
};

/* Every schema above: their lookups are built once (jsonfold.c). */
const struct jf_schema *const schema_indexed[] = {
	&schema_driver_config,
	&schema_bind_options,
	&schema_volume_options,
	&schema_tmpfs_options,
	&schema_mount,
	&schema_log_config,
	&schema_restart,
	&schema_port_binding,
	&schema_hostconfig,
	&schema_config,
	&schema_endpoint,
	&schema_networking,
	&schema_update,
	&schema_exec,
	&schema_volume_create,
	&schema_network_create,
	&schema_create_wrapper,
	NULL
};
