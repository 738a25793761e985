"""The built-in DevOps / software troubleshooting knowledge graph.

The small graph is one "estate" of curated troubleshooting knowledge in nine domains (TLS,
network, memory, disk, CPU, Kubernetes, databases, CI/CD, auth): symptoms are caused by causes,
causes lead to symptoms and are fixed by fixes, symptoms are diagnosed by diagnostics, and
diagnostics and fixes use tools. Which fix belongs to which cause, which diagnostic to which
symptom and which tool to which step are hand-written; which causes explain which symptom is
sampled within a domain (every pairing there is plausible), plus hand-written cross-domain links
(a full disk makes database writes fail).

Larger graphs repeat that estate once per service ("PaymentsDB", "CheckoutAPI", ...), prefixing
names, sharing the tools, and wiring failures of upstream services into symptoms of downstream
ones, so a million edges still read like a real (if unlucky) company.

Everything is drawn from `random.Random(seed)` in list order, so a seed gives a byte-identical
kg.json.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from kgreason.kg.checks import paused_gc
from kgreason.kg.graph import Edge, Entity, KGError, KnowledgeGraph, Relation, weak_components
from kgreason.kg.phrases import humanize

SIZES = {"small": 0, "medium": 20_000, "large": 1_000_000}  # target edge counts; small = one estate

RELATIONS = (
    Relation("caused_by", "is caused by", "causes"),
    Relation("leads_to", "leads to", "results from"),
    Relation("fixed_by", "is fixed by", "fixes"),
    Relation("diagnosed_by", "is diagnosed by", "diagnoses"),
    Relation("uses_tool", "uses", "is used by"),
    Relation("related_to", "is related to", "is related to"),
)
TYPES = ("symptom", "cause", "fix", "diagnostic", "tool")

# Out-degree of sampled relations: mostly 2-3, sometimes 1 (unique continuations exist) or 4.
_DEGREE_WEIGHTS = {1: 2, 2: 4, 3: 3, 4: 1}
_RELATED_SHARE = 0.5


@dataclass
class Domain:
    """Hand-written knowledge of one area: symptom -> diagnostics, cause -> fixes, step -> tools."""

    name: str
    symptoms: dict[str, str]  # symptom -> space-separated diagnostics
    causes: dict[str, str]  # cause -> space-separated fixes
    diagnostics: dict[str, str] = field(default_factory=dict)  # diagnostic -> tools
    fixes: dict[str, str] = field(default_factory=dict)  # fix -> tools


DOMAINS: tuple[Domain, ...] = (
    Domain(
        "tls",
        symptoms={
            "TLSHandshakeError": "InspectCertificateChain TestTLSWithOpenSSL",
            "CertificateVerifyFailed": "InspectCertificateChain CheckCertificateExpiry",
            "SSLProtocolError": "TestTLSWithOpenSSL CapturePackets",
            "BrowserCertificateWarning": "CheckCertificateExpiry InspectCertificateChain",
            "MutualTLSRejected": "InspectClientCertificate TestTLSWithOpenSSL",
            "OCSPStaplingFailure": "CheckOCSPResponse",
            "HTTPSRedirectLoop": "TraceHTTPRedirects",
        },
        causes={
            "ClockSkew": "SyncNTP EnableChronyd",
            "ExpiredCertificate": "RenewCertificate AutomateCertRenewal",
            "MissingIntermediateCA": "InstallFullChain",
            "CipherSuiteMismatch": "UpdateCipherSuites EnableTLS13",
            "SNIMismatch": "FixSNIConfig",
            "RevokedCertificate": "ReissueCertificate",
            "OutdatedCABundle": "UpdateCACertificates",
            "WrongClientCertificate": "RotateClientCertificate",
        },
        diagnostics={
            "InspectCertificateChain": "openssl",
            "TestTLSWithOpenSSL": "openssl",
            "CheckCertificateExpiry": "openssl certbot",
            "InspectClientCertificate": "openssl curl",
            "CheckOCSPResponse": "openssl",
            "TraceHTTPRedirects": "curl",
        },
        fixes={
            "SyncNTP": "chronyc",
            "EnableChronyd": "systemctl chronyc",
            "RenewCertificate": "certbot",
            "AutomateCertRenewal": "certbot systemctl",
            "InstallFullChain": "openssl nginx",
            "UpdateCipherSuites": "nginx",
            "EnableTLS13": "nginx",
            "FixSNIConfig": "nginx",
            "ReissueCertificate": "certbot",
            "UpdateCACertificates": "update-ca-certificates",
            "RotateClientCertificate": "vault",
        },
    ),
    Domain(
        "network",
        symptoms={
            "ConnectionTimeout": "TraceNetworkRoute CapturePackets",
            "ConnectionRefused": "ListListeningPorts CheckFirewallRules",
            "DNSResolutionFailure": "QueryDNSRecords CheckResolvConf",
            "HighPacketLoss": "RunMTRReport CapturePackets",
            "ConnectionResetByPeer": "CapturePackets CheckLoadBalancerLogs",
            "IntermittentNXDOMAIN": "QueryDNSRecords CheckDNSCache",
            "HTTP502BadGateway": "CheckLoadBalancerLogs CheckUpstreamHealth",
            "HTTP504GatewayTimeout": "CheckUpstreamHealth TraceNetworkRoute",
        },
        causes={
            "FirewallRuleBlocking": "OpenFirewallPort AuditSecurityGroups",
            "MTUMismatch": "LowerInterfaceMTU EnableMSSClamping",
            "StaleDNSCache": "FlushDNSCache LowerDNSTTL",
            "MisconfiguredResolver": "FixResolvConf",
            "HealthCheckMisconfigured": "FixHealthCheckPath",
            "ConntrackTableFull": "RaiseConntrackMax",
            "UpstreamServiceDown": "RestartUpstreamService AddCircuitBreaker",
            "MissingRoute": "AddStaticRoute",
        },
        diagnostics={
            "TraceNetworkRoute": "traceroute mtr",
            "CapturePackets": "tcpdump wireshark",
            "ListListeningPorts": "lsof netstat",
            "CheckFirewallRules": "iptables",
            "QueryDNSRecords": "nslookup",
            "CheckResolvConf": "resolvectl",
            "RunMTRReport": "mtr",
            "CheckDNSCache": "resolvectl",
            "CheckLoadBalancerLogs": "awscli kubectl",
            "CheckUpstreamHealth": "curl",
        },
        fixes={
            "OpenFirewallPort": "iptables terraform",
            "AuditSecurityGroups": "awscli terraform",
            "LowerInterfaceMTU": "iproute2",
            "EnableMSSClamping": "iptables",
            "FlushDNSCache": "resolvectl",
            "LowerDNSTTL": "terraform",
            "FixResolvConf": "resolvectl",
            "FixHealthCheckPath": "terraform kubectl",
            "RaiseConntrackMax": "sysctl",
            "RestartUpstreamService": "systemctl kubectl",
            "AddCircuitBreaker": "istioctl",
            "AddStaticRoute": "iproute2",
        },
    ),
    Domain(
        "memory",
        symptoms={
            "OOMKilled": "CheckDmesg InspectPodEvents",
            "HighMemoryUsage": "CheckMemoryUsage TakeHeapDump",
            "SwapThrashing": "CheckVmstat CheckMemoryUsage",
            "JavaHeapSpaceError": "TakeHeapDump AnalyzeGCLogs",
            "LongGCPauses": "AnalyzeGCLogs ProfileAllocations",
            "SegmentationFault": "InspectCoreDump CheckDmesg",
            "GradualMemoryGrowth": "ProfileAllocations TakeHeapDump",
        },
        causes={
            "MemoryLeak": "PatchMemoryLeak ScheduleRollingRestart",
            "UndersizedMemoryLimit": "RaiseMemoryLimit",
            "UnboundedCache": "BoundCacheSize",
            "HeapSizeTooSmall": "TuneJVMHeap",
            "MemoryFragmentation": "SwitchToJemalloc",
            "BufferOverflow": "AddBoundsChecks UpgradeNativeLibrary",
            "LargePayloadBuffering": "StreamLargePayloads",
        },
        diagnostics={
            "CheckDmesg": "dmesg",
            "InspectPodEvents": "kubectl",
            "CheckMemoryUsage": "htop",
            "TakeHeapDump": "jmap",
            "CheckVmstat": "vmstat",
            "AnalyzeGCLogs": "jstat",
            "ProfileAllocations": "valgrind heaptrack",
            "InspectCoreDump": "gdb",
        },
        fixes={
            "PatchMemoryLeak": "valgrind git",
            "ScheduleRollingRestart": "kubectl",
            "RaiseMemoryLimit": "kubectl helm",
            "BoundCacheSize": "helm",
            "TuneJVMHeap": "jcmd",
            "SwitchToJemalloc": "docker",
            "AddBoundsChecks": "gdb git",
            "UpgradeNativeLibrary": "apt-get",
            "StreamLargePayloads": "git",
        },
    ),
    Domain(
        "disk",
        symptoms={
            "NoSpaceLeftOnDevice": "CheckDiskUsage FindLargeFiles",
            "ReadOnlyFilesystem": "CheckDmesg CheckMountOptions",
            "HighIOWait": "CheckIOStats FindTopIOProcesses",
            "SlowDiskWrites": "CheckIOStats RunFioBenchmark",
            "InodeExhaustion": "CheckInodeUsage",
            "FilesystemCorruption": "RunFsckDryRun CheckDmesg",
            "VolumeMountFailure": "InspectPodEvents DescribePersistentVolume",
        },
        causes={
            "LogFilesNotRotated": "ConfigureLogrotate PruneOldLogs",
            "DiskFull": "ExtendVolume PruneOldLogs CleanDockerImages",
            "FailingDiskHardware": "ReplaceDisk RestoreFromBackup",
            "TooManySmallFiles": "ArchiveSmallFiles",
            "BurstCreditsExhausted": "UpgradeVolumeType",
            "UncleanShutdown": "RunFsckRepair",
            "VolumeAttachedElsewhere": "DetachStaleVolume",
            "DanglingDockerImages": "CleanDockerImages",
        },
        diagnostics={
            "CheckDiskUsage": "df ncdu",
            "FindLargeFiles": "ncdu",
            "CheckMountOptions": "findmnt",
            "CheckIOStats": "iostat",
            "FindTopIOProcesses": "iotop",
            "RunFioBenchmark": "fio",
            "CheckInodeUsage": "df",
            "RunFsckDryRun": "fsck",
            "DescribePersistentVolume": "kubectl",
        },
        fixes={
            "ConfigureLogrotate": "logrotate",
            "PruneOldLogs": "journalctl",
            "ExtendVolume": "awscli resize2fs",
            "CleanDockerImages": "docker",
            "ReplaceDisk": "smartctl",
            "RestoreFromBackup": "restic",
            "ArchiveSmallFiles": "tar",
            "UpgradeVolumeType": "awscli terraform",
            "RunFsckRepair": "fsck",
            "DetachStaleVolume": "kubectl awscli",
        },
    ),
    Domain(
        "cpu",
        symptoms={
            "HighCPUUsage": "ProfileCPU CheckLoadAverage",
            "HighLatency": "TraceRequests ProfileCPU",
            "RequestQueueBacklog": "CheckThreadDump TraceRequests",
            "CPUThrottling": "CheckCgroupThrottling",
            "HighLoadAverage": "CheckLoadAverage ProfileCPU",
            "ApplicationHang": "CheckThreadDump AttachStrace",
            "HighTailLatency": "TraceRequests QueryLatencyHistogram",
        },
        causes={
            "InfiniteLoop": "FixRunawayLoop",
            "LockContention": "ReduceLockScope",
            "UndersizedCPULimit": "RaiseCPULimit",
            "NoisyNeighbor": "MoveToDedicatedNode",
            "Deadlock": "FixLockOrdering",
            "CatastrophicRegexBacktracking": "RewriteRegex",
            "InsufficientReplicas": "ScaleOutReplicas EnableAutoscaling",
            "ExcessiveLogging": "LowerLogLevel",
        },
        diagnostics={
            "ProfileCPU": "perf py-spy",
            "CheckLoadAverage": "htop",
            "TraceRequests": "jaeger",
            "CheckThreadDump": "jstack",
            "CheckCgroupThrottling": "prometheus",
            "AttachStrace": "strace",
            "QueryLatencyHistogram": "prometheus grafana",
        },
        fixes={
            "FixRunawayLoop": "git perf",
            "ReduceLockScope": "git",
            "RaiseCPULimit": "kubectl helm",
            "MoveToDedicatedNode": "kubectl",
            "FixLockOrdering": "git jstack",
            "RewriteRegex": "git",
            "ScaleOutReplicas": "kubectl",
            "EnableAutoscaling": "kubectl helm",
            "LowerLogLevel": "helm",
        },
    ),
    Domain(
        "kubernetes",
        symptoms={
            "CrashLoopBackOff": "InspectPodLogs InspectPodEvents",
            "ImagePullBackOff": "InspectPodEvents CheckRegistryAccess",
            "PodStuckPending": "DescribePendingPod CheckNodeCapacity",
            "NodeNotReady": "CheckKubeletLogs CheckNodeConditions",
            "ReadinessProbeFailing": "InspectPodLogs TestProbeEndpoint",
            "EvictedPods": "CheckNodeConditions InspectPodEvents",
            "ServiceEndpointsEmpty": "CheckServiceSelectors",
        },
        causes={
            "MissingConfigMap": "CreateConfigMap",
            "InvalidImageTag": "FixImageTag",
            "RegistryCredentialsExpired": "RefreshImagePullSecret",
            "InsufficientClusterCapacity": "AddNodePool EnableClusterAutoscaler",
            "KubeletCertificateExpired": "RotateKubeletCertificates",
            "ProbeTimeoutTooShort": "RaiseProbeTimeout",
            "LabelSelectorMismatch": "FixServiceSelector",
            "DiskPressureOnNode": "CleanDockerImages ExtendVolume",
        },
        diagnostics={
            "InspectPodLogs": "kubectl stern",
            "CheckRegistryAccess": "docker",
            "DescribePendingPod": "kubectl",
            "CheckNodeCapacity": "kubectl",
            "CheckKubeletLogs": "journalctl",
            "CheckNodeConditions": "kubectl",
            "TestProbeEndpoint": "curl",
            "CheckServiceSelectors": "kubectl",
        },
        fixes={
            "CreateConfigMap": "kubectl",
            "FixImageTag": "helm",
            "RefreshImagePullSecret": "kubectl",
            "AddNodePool": "terraform",
            "EnableClusterAutoscaler": "helm",
            "RotateKubeletCertificates": "kubeadm",
            "RaiseProbeTimeout": "helm",
            "FixServiceSelector": "kubectl",
        },
    ),
    Domain(
        "database",
        symptoms={
            "TooManyConnections": "ListDatabaseConnections CheckConnectionPoolMetrics",
            "SlowQueries": "ExplainQueryPlan CheckSlowQueryLog",
            "DeadlockDetected": "CheckDatabaseLocks CheckDatabaseLogs",
            "ReplicationLag": "CheckReplicationStatus",
            "DatabaseWriteFailure": "CheckDatabaseLogs CheckDiskUsage",
            "ConnectionPoolExhausted": "CheckConnectionPoolMetrics ListDatabaseConnections",
            "TableBloat": "InspectTableStats",
        },
        causes={
            "MissingIndex": "AddIndex",
            "ConnectionLeak": "CloseLeakedConnections AddPgBouncer",
            "LongRunningTransaction": "SetStatementTimeout KillBlockingQuery",
            "AutovacuumFallingBehind": "TuneAutovacuum",
            "UndersizedConnectionPool": "RaisePoolSize",
            "ReplicaUnderprovisioned": "UpgradeReplicaInstance",
            "InconsistentLockOrder": "FixLockOrdering",
            "StaleTableStatistics": "RunAnalyze",
        },
        diagnostics={
            "ListDatabaseConnections": "psql",
            "CheckConnectionPoolMetrics": "prometheus grafana",
            "ExplainQueryPlan": "psql",
            "CheckSlowQueryLog": "pgbadger",
            "CheckDatabaseLocks": "psql",
            "CheckReplicationStatus": "psql",
            "CheckDatabaseLogs": "pgbadger journalctl",
            "InspectTableStats": "psql",
        },
        fixes={
            "AddIndex": "psql flyway",
            "CloseLeakedConnections": "git",
            "AddPgBouncer": "pgbouncer helm",
            "SetStatementTimeout": "psql",
            "KillBlockingQuery": "psql",
            "TuneAutovacuum": "psql",
            "RaisePoolSize": "helm",
            "UpgradeReplicaInstance": "terraform",
            "RunAnalyze": "psql",
        },
    ),
    Domain(
        "cicd",
        symptoms={
            "BuildFailure": "InspectBuildLogs ReproduceBuildLocally",
            "FlakyTests": "RerunFailedTests InspectBuildLogs",
            "DependencyResolutionError": "InspectLockfile InspectBuildLogs",
            "DeploymentRolledBack": "CheckRolloutHistory InspectPodLogs",
            "ArtifactUploadFailure": "InspectBuildLogs CheckRegistryAccess",
            "SlowCIPipeline": "ProfileBuildSteps",
            "ConfigDriftDetected": "RunTerraformPlan",
        },
        causes={
            "UnpinnedDependency": "PinDependencyVersions",
            "CorruptedBuildCache": "ClearBuildCache",
            "TestOrderDependency": "IsolateTestState",
            "ExpiredCIToken": "RotateCIToken",
            "BreakingAPIChange": "RollBackDeployment AddContractTests",
            "ManualInfraChange": "ImportIntoTerraform",
            "RegistryRateLimiting": "MirrorBaseImages",
            "MissingEnvironmentVariable": "AddMissingEnvVar",
        },
        diagnostics={
            "InspectBuildLogs": "jenkins",
            "ReproduceBuildLocally": "docker",
            "RerunFailedTests": "pytest",
            "InspectLockfile": "npm",
            "CheckRolloutHistory": "kubectl argocd",
            "ProfileBuildSteps": "jenkins gradle",
            "RunTerraformPlan": "terraform",
        },
        fixes={
            "PinDependencyVersions": "npm git",
            "ClearBuildCache": "gradle jenkins",
            "IsolateTestState": "pytest",
            "RotateCIToken": "vault jenkins",
            "RollBackDeployment": "argocd kubectl",
            "AddContractTests": "pytest",
            "ImportIntoTerraform": "terraform",
            "MirrorBaseImages": "docker",
            "AddMissingEnvVar": "helm",
        },
    ),
    Domain(
        "auth",
        symptoms={
            "HTTP401Unauthorized": "DecodeJWT CheckAuthServerLogs",
            "HTTP403Forbidden": "ReviewIAMPolicy CheckRBACBindings",
            "TokenExpiredError": "DecodeJWT",
            "PermissionDenied": "CheckFilePermissions CheckSELinuxDenials",
            "LoginRedirectLoop": "TraceHTTPRedirects InspectBrowserCookies",
            "SSHAuthenticationFailure": "CheckSSHLogs",
            "SecretNotFound": "CheckSecretMounts",
        },
        causes={
            "ExpiredAccessToken": "EnableTokenRefresh",
            "MissingIAMPermission": "GrantIAMPermission",
            "MissingRBACRoleBinding": "CreateRoleBinding",
            "WrongFileOwnership": "FixFileOwnership",
            "SELinuxPolicyDenial": "RelabelSELinuxContext",
            "SameSiteCookieMisconfigured": "FixCookieSameSite",
            "AuthorizedKeyMissing": "AddAuthorizedKey",
            "SecretNotSynced": "ResyncExternalSecrets",
        },
        diagnostics={
            "DecodeJWT": "jq",
            "CheckAuthServerLogs": "kubectl journalctl",
            "ReviewIAMPolicy": "awscli",
            "CheckRBACBindings": "kubectl",
            "CheckFilePermissions": "namei",
            "CheckSELinuxDenials": "ausearch",
            "InspectBrowserCookies": "chrome-devtools",
            "CheckSSHLogs": "journalctl",
            "CheckSecretMounts": "kubectl",
        },
        fixes={
            "EnableTokenRefresh": "git",
            "GrantIAMPermission": "awscli terraform",
            "CreateRoleBinding": "kubectl",
            "FixFileOwnership": "chown",
            "RelabelSELinuxContext": "restorecon",
            "FixCookieSameSite": "git",
            "AddAuthorizedKey": "ssh-copy-id",
            "ResyncExternalSecrets": "kubectl vault",
        },
    ),
)

# Failures that cross domains: (cause, symptom) means cause leads_to symptom and symptom
# caused_by cause.
BRIDGES: tuple[tuple[str, str], ...] = (
    ("ClockSkew", "TokenExpiredError"),
    ("ClockSkew", "HTTP401Unauthorized"),
    ("KubeletCertificateExpired", "TLSHandshakeError"),
    ("MemoryLeak", "HighLatency"),
    ("MemoryLeak", "EvictedPods"),
    ("UndersizedMemoryLimit", "CrashLoopBackOff"),
    ("DiskFull", "DatabaseWriteFailure"),
    ("DiskFull", "EvictedPods"),
    ("ExcessiveLogging", "NoSpaceLeftOnDevice"),
    ("ExcessiveLogging", "HighIOWait"),
    ("MissingIndex", "HighLatency"),
    ("MissingIndex", "HighCPUUsage"),
    ("ConnectionLeak", "ConnectionTimeout"),
    ("LongRunningTransaction", "RequestQueueBacklog"),
    ("RegistryRateLimiting", "ImagePullBackOff"),
    ("RegistryCredentialsExpired", "ArtifactUploadFailure"),
    ("UnpinnedDependency", "CrashLoopBackOff"),
    ("MissingEnvironmentVariable", "CrashLoopBackOff"),
    ("BreakingAPIChange", "HTTP502BadGateway"),
    ("SecretNotSynced", "CrashLoopBackOff"),
    ("MissingIAMPermission", "ArtifactUploadFailure"),
    ("UndersizedCPULimit", "ReadinessProbeFailing"),
    ("InsufficientReplicas", "HTTP504GatewayTimeout"),
    ("UpstreamServiceDown", "ReadinessProbeFailing"),
    ("FailingDiskHardware", "ReadOnlyFilesystem"),
    ("ExpiredCertificate", "ArtifactUploadFailure"),
    ("WrongFileOwnership", "BuildFailure"),
    ("StaleDNSCache", "ImagePullBackOff"),
)

# Tools that do the same job or work together.
TOOL_PAIRS: tuple[tuple[str, str], ...] = (
    ("tcpdump", "wireshark"),
    ("traceroute", "mtr"),
    ("kubectl", "helm"),
    ("kubectl", "stern"),
    ("prometheus", "grafana"),
    ("jmap", "jstack"),
    ("jstat", "jcmd"),
    ("iostat", "iotop"),
    ("vmstat", "htop"),
    ("psql", "pgbadger"),
    ("psql", "pgbouncer"),
    ("lsof", "netstat"),
    ("openssl", "certbot"),
    ("openssl", "curl"),
    ("terraform", "awscli"),
    ("docker", "kubectl"),
    ("argocd", "helm"),
    ("journalctl", "systemctl"),
    ("perf", "py-spy"),
    ("strace", "gdb"),
    ("df", "ncdu"),
    ("fsck", "smartctl"),
    ("jenkins", "gradle"),
    ("npm", "git"),
    ("resolvectl", "nslookup"),
    ("iptables", "iproute2"),
    ("restorecon", "ausearch"),
    ("chown", "namei"),
    ("kubeadm", "kubectl"),
    ("valgrind", "heaptrack"),
)

# Service names for the larger sizes: business area x component.
_AREAS = (
    "Checkout", "Payments", "Billing", "Search", "Auth", "Inventory", "Catalog", "Cart", "Orders",
    "Shipping", "Notifications", "Email", "Analytics", "Reporting", "Ledger", "Fraud", "Recommendations",
    "Profile", "Accounts", "Identity", "Session", "Pricing", "Promotions", "Reviews", "Media", "Upload",
    "Thumbnail", "Video", "Chat", "Feed", "Timeline", "Geo", "Maps", "Routing", "Dispatch", "Fleet",
    "Telemetry", "Metrics", "Logging", "Audit", "Compliance", "Tax", "Invoice", "Subscription", "Loyalty",
    "Rewards", "Wallet", "Ticketing", "Booking", "Calendar", "Export", "Import", "Webhook", "Partner",
    "Vendor", "Supplier", "Warehouse", "Returns", "Refunds", "Support", "Helpdesk", "Onboarding", "KYC",
    "Risk", "Ranking", "Crawler", "Translation", "Content", "CMS", "Forum", "Storefront", "Backoffice",
    "Quota", "Licensing", "FeatureFlag", "Experiment", "Config", "Secrets", "Directory", "Archive",
)  # fmt: skip
_COMPONENTS = (
    "API", "Worker", "Gateway", "Frontend", "Cron", "Consumer", "Proxy", "Cache", "DB", "Queue",
    "Scheduler", "Service", "Batch", "Stream", "Indexer", "Admin",
)  # fmt: skip
_REGIONS = ("", "EU", "US", "APAC", "LATAM", "MEA")


# Spellings that splitting CamelCase gets wrong ("SELinux" is not "SE linux").
_ALIAS_FIXES = tuple(
    (re.compile(rf"\b{re.escape(wrong)}\b"), right)
    for wrong, right in (
        ("open SSL", "OpenSSL"),
        ("SE linux", "SELinux"),
        ("pg bouncer", "PgBouncer"),
        ("TLS 13", "TLS 1.3"),
        ("DNSTTL", "DNS TTL"),
        ("same site", "SameSite"),
        ("java", "Java"),
        ("read only", "read-only"),
    )
)


def build_devops_kg(seed: int = 0, size: str | int = "small", progress: bool = False) -> KnowledgeGraph:
    """The built-in troubleshooting graph.

    `size`: "small" (one estate, about 370 entities and 950 edges), "medium" (about 20k edges),
    "large" (about 1M edges) or an int: roughly that many edges. Same seed and size, same graph.
    `progress` shows a progress bar (on a terminal) while the larger sizes build.
    """
    target = _target_edges(size)
    with paused_gc():
        return _build(random.Random(seed), target, size, progress)


def _build(rng: random.Random, target: int, size: str | int, progress: bool) -> KnowledgeGraph:
    builder = _Builder()
    if target == 0:
        builder.add_estate(rng, prefix="")
        name = "devops"
    else:
        name = f"devops-{size}" if isinstance(size, str) and not size.isdigit() else f"devops-{target}"
        _add_services(builder, rng, target, progress)
    builder.add_tool_pairs()
    builder.connect_components(rng)
    # The builder never emits self-loops, duplicates or unknown ids, so skip from_parts' re-check.
    relations = {r.id: r for r in RELATIONS}
    return KnowledgeGraph(entities=builder.entities, relations=relations, edges=builder.edges, name=name)


def _add_services(builder: _Builder, rng: random.Random, target: int, progress: bool) -> None:
    """One estate per service, each wired to earlier ones, until `target` edges exist."""
    from tqdm import tqdm

    services: list[str] = []
    with tqdm(total=target, unit=" edges", desc="building KG", disable=None if progress else True) as bar:
        for prefix in _service_names():
            services.append(prefix)
            before = len(builder.edges)
            builder.add_estate(rng, prefix=prefix)
            if services[1:]:
                builder.add_dependencies(rng, prefix, services[:-1])
            bar.update(min(len(builder.edges), target) - min(before, target))
            if len(builder.edges) >= target:
                return
    raise KGError(f"{target} edges need more services than the built-in name list has")


def _target_edges(size: str | int) -> int:
    """0 for the single small estate, else the edge count to reach with prefixed services."""
    if isinstance(size, str) and size.isdigit():
        size = int(size)
    if isinstance(size, int) and not isinstance(size, bool):
        if size <= 0:
            raise KGError(f"size must be small, medium, large or a positive edge count, got {size!r}")
        return size
    if size not in SIZES:
        raise KGError(f"unknown size {size!r}: expected one of {', '.join(SIZES)} or an edge count")
    return SIZES[size]


def _service_names() -> Iterable[str]:
    for region in _REGIONS:
        for area in _AREAS:
            for component in _COMPONENTS:
                yield f"{area}{component}{region}"


class _Builder:
    """Accumulates entities and edges in a deterministic order; names are resolved per estate."""

    def __init__(self) -> None:
        self.entities: dict[str, Entity] = {}
        self.edges: list[Edge] = []
        self._edge_keys: set[tuple[str, str, str]] = set()
        self._alias_cache: dict[str, str] = {}
        self._seen_names: set[str] = set()
        self._domain_of: dict[str, str] = {}
        # per estate prefix: domain -> (symptom ids, cause ids)
        self._estates: dict[str, dict[str, tuple[list[str], list[str]]]] = {}

    # --- entities ----------------------------------------------------------------------------
    def entity(self, base: str, etype: str, prefix: str) -> str:
        eid = f"{prefix}{base}"
        if eid in self.entities:
            return eid
        if etype == "tool":
            aliases: tuple[str, ...] = ()
        else:
            human = self._humanize(base)
            alias = f"{self._humanize(prefix)} {human}" if prefix else human
            aliases = (alias,) if alias.lower() != eid.lower() else ()
        for name in (eid, *aliases):
            key = name.lower()
            if key in self._seen_names:
                raise KGError(f"built-in KG: name {name!r} is used by two entities")
            self._seen_names.add(key)
        self.entities[eid] = Entity(eid, eid, etype, aliases)
        return eid

    def ref(self, eid: str, etype: str) -> str:
        """An entity that must already be defined (catches typos in the hand-written tables)."""
        entity = self.entities.get(eid)
        if entity is None or entity.type != etype:
            raise KGError(f"built-in KG: {eid!r} is referenced as a {etype} but not defined as one")
        return eid

    def _humanize(self, text: str) -> str:
        if text not in self._alias_cache:
            alias = humanize(text)
            for pattern, fixed in _ALIAS_FIXES:
                alias = pattern.sub(fixed, alias)
            self._alias_cache[text] = alias
        return self._alias_cache[text]

    def edge(self, head: str, relation: str, tail: str) -> bool:
        key = (head, relation, tail)
        if head == tail or key in self._edge_keys:
            return False
        self._edge_keys.add(key)
        self.edges.append(Edge(head, relation, tail))
        return True

    # --- one estate --------------------------------------------------------------------------
    def add_estate(self, rng: random.Random, prefix: str) -> None:
        """All nine domains for one service (or the whole small graph when prefix is empty)."""

        def ent(base: str, etype: str) -> str:
            return self.entity(base, etype, "" if etype == "tool" else prefix)

        estate: dict[str, tuple[list[str], list[str]]] = {}
        for d in DOMAINS:
            symptoms = [ent(s, "symptom") for s in d.symptoms]
            causes = [ent(c, "cause") for c in d.causes]
            estate[d.name] = (symptoms, causes)
        for d in DOMAINS:
            for diag in d.diagnostics:
                ent(diag, "diagnostic")
            for fix in d.fixes:
                ent(fix, "fix")
        self._estates[prefix] = estate

        for d in DOMAINS:
            symptoms, causes = estate[d.name]
            self._sample_links(rng, symptoms, "caused_by", causes)
            self._sample_links(rng, causes, "leads_to", symptoms)
            for s, diags in d.symptoms.items():
                for diag in diags.split():
                    self.edge(prefix + s, "diagnosed_by", self.ref(prefix + diag, "diagnostic"))
            for c, fixes in d.causes.items():
                for fix in fixes.split():
                    self.edge(prefix + c, "fixed_by", self.ref(prefix + fix, "fix"))
            for step, tools in (*d.diagnostics.items(), *d.fixes.items()):
                for tool in tools.split():
                    self.edge(prefix + step, "uses_tool", ent(tool, "tool"))
            self._sample_related(rng, symptoms)
            self._sample_related(rng, causes)
        for cause, symptom in BRIDGES:
            c, s = self.ref(prefix + cause, "cause"), self.ref(prefix + symptom, "symptom")
            self.edge(c, "leads_to", s)
            self.edge(s, "caused_by", c)

    def _sample_links(
        self, rng: random.Random, sources: list[str], relation: str, targets: list[str]
    ) -> None:
        """Each source gets 1-4 targets; then every target left without an incoming edge gets one,
        so no entity is a dead end that chains cannot reach."""
        degrees, weights = list(_DEGREE_WEIGHTS), list(_DEGREE_WEIGHTS.values())
        reached: set[str] = set()
        for src in sources:
            k = min(rng.choices(degrees, weights)[0], len(targets))
            for dst in rng.sample(targets, k):
                self.edge(src, relation, dst)
                reached.add(dst)
        for dst in targets:
            if dst not in reached:
                self.edge(rng.choice(sources), relation, dst)

    def _sample_related(self, rng: random.Random, group: list[str]) -> None:
        """Pair about half the entities with another of the same domain and type, both directions
        (related_to is the vaguest relation; too much of it makes chains read like noise)."""
        for a in group:
            b = rng.choice(group)
            if rng.random() < _RELATED_SHARE and a != b:
                self.edge(a, "related_to", b)
                self.edge(b, "related_to", a)

    def add_dependencies(self, rng: random.Random, prefix: str, earlier: list[str]) -> None:
        """Wire this service to 1-3 upstream services: their failures surface as its symptoms,
        and the same symptom in both is related."""
        for upstream in rng.sample(earlier, min(len(earlier), rng.randint(1, 3))):
            up, down = self._estates[upstream], self._estates[prefix]
            for domain in rng.sample(sorted(up), 3):
                up_causes = up[domain][1]
                down_symptoms = down[domain][0]
                for _ in range(2):
                    cause, symptom = rng.choice(up_causes), rng.choice(down_symptoms)
                    self.edge(cause, "leads_to", symptom)
                    self.edge(symptom, "caused_by", cause)
                s = rng.randrange(len(down_symptoms))
                self.edge(down_symptoms[s], "related_to", up[domain][0][s])
                self.edge(up[domain][0][s], "related_to", down_symptoms[s])

    def add_tool_pairs(self) -> None:
        for a, b in TOOL_PAIRS:
            if a in self.entities and b in self.entities:
                self.edge(a, "related_to", b)
                self.edge(b, "related_to", a)

    def connect_components(self, rng: random.Random) -> None:
        """Join any weakly connected pieces to the largest one with a related_to edge between
        entities of the same type, so every entity can be reached from every other."""
        groups = weak_components(self.entities, self.edges)
        if len(groups) <= 1:
            return
        ordered = sorted(groups, key=lambda g: (-len(g), g[0]))
        main = ordered[0]
        for piece in ordered[1:]:
            a = piece[0]
            same_type = [m for m in main if self.entities[m].type == self.entities[a].type] or main
            b = rng.choice(same_type)
            self.edge(a, "related_to", b)
            self.edge(b, "related_to", a)
