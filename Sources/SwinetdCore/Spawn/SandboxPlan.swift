import CSwinetd

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A service's sandbox as the spawn shim takes it (`sw_sandbox`): the mount plan, the seccomp
/// program, the capability mask and the cgroup descriptor, all built once per configuration load.
/// The C memory lives as long as the plan and is only read during a spawn, so spawn threads can
/// share it.
final class SandboxPlan {
    /// What the child is handed; stable for the plan's lifetime.
    let pointer: UnsafeMutablePointer<sw_sandbox>
    private let mounts: UnsafeMutableBufferPointer<sw_mount_step>
    private let paths: [UnsafeMutablePointer<CChar>]
    private let filter: UnsafeMutableBufferPointer<sw_bpf_insn>?
    private let cgroupFD: Int32
    /// The mount plan, in order, for logs and tests.
    let mountSteps: [MountStep]
    /// Why the service cannot be spawned (the cgroup could not be set up); nil when it can.
    let setupProblem: String?

    struct MountStep: Hashable, CustomStringConvertible {
        enum Operation: Int32 {
            case bindSelf = 1  // SW_MOUNT_BIND_SELF
            case readOnly = 2  // SW_MOUNT_READONLY
            case writable = 3  // SW_MOUNT_WRITABLE
            case tmpfs = 4  // SW_MOUNT_TMPFS
        }

        var operation: Operation
        var path: String
        /// Skipped when the path does not exist.
        var optional: Bool

        var description: String { "\(operation) \(path)\(optional ? " (optional)" : "")" }
    }

    /// The API file systems `protect_system = strict` leaves writable, as systemd does.
    static let strictWritable = ["/dev", "/proc", "/sys"]

    /// The mount plan of a sandbox: read-only parts first, then the writable exceptions, then the
    /// private tmpfs mounts (last, so that a read-only root cannot cover them). Paths are host
    /// paths: with a chroot they are inside it.
    static func mountPlan(for sandbox: Sandbox) -> [MountStep] {
        let root = sandbox.chroot.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 } ?? ""
        var steps: [MountStep] = []
        switch sandbox.protectSystem {
        case .no:
            break
        case .strict:
            if root.isEmpty {
                // The root is a mount point already (the namespace's root mount).
                steps.append(MountStep(operation: .readOnly, path: "/", optional: false))
            } else {
                steps.append(MountStep(operation: .bindSelf, path: root, optional: false))
                steps.append(MountStep(operation: .readOnly, path: root, optional: false))
            }
            for path in strictWritable {
                steps.append(MountStep(operation: .bindSelf, path: root + path, optional: true))
                steps.append(MountStep(operation: .writable, path: root + path, optional: true))
            }
        case .yes, .full:
            for path in sandbox.protectSystem.readOnlyPaths {
                steps.append(MountStep(operation: .bindSelf, path: root + path, optional: true))
                steps.append(MountStep(operation: .readOnly, path: root + path, optional: true))
            }
        }
        if sandbox.protectSystem != .no {
            for written in sandbox.readWritePaths {
                let optional = written.hasPrefix("-")
                let path = root + (optional ? String(written.dropFirst()) : written)
                steps.append(MountStep(operation: .bindSelf, path: path, optional: optional))
                steps.append(MountStep(operation: .writable, path: path, optional: optional))
            }
        }
        if sandbox.privateTmp {
            steps.append(MountStep(operation: .tmpfs, path: root + "/tmp", optional: false))
            steps.append(MountStep(operation: .tmpfs, path: root + "/var/tmp", optional: true))
        }
        return steps
    }

    /// Whether the child must turn on no_new_privs: asked for, or needed to load a seccomp filter,
    /// which an unprivileged task may only do under no_new_privs (systemd implies it the same way).
    static func needsNoNewPrivileges(_ sandbox: Sandbox, credentials: Credentials) -> Bool {
        if sandbox.noNewPrivileges { return true }
        guard sandbox.usesSeccomp else { return false }
        let staysRoot = credentials.uid == 0  // swinetd's own uid when it cannot switch
        let keepsSysAdmin = sandbox.capabilities.map { $0.contains(Capabilities.sysAdmin) } ?? true
        return !(staysRoot && keepsSysAdmin)
    }

    init(sandbox: Sandbox, credentials: Credentials, serviceID: String, cgroupRoot: String?) {
        var problem: String?
        var cgroupFD: Int32 = -1
        if sandbox.needsCgroup {
            do {
                cgroupFD = try CgroupTree.prepare(
                    serviceID: serviceID, memoryMax: sandbox.memoryMax, tasksMax: sandbox.tasksMax, root: cgroupRoot)
            } catch {
                problem = error.description
            }
        }
        self.cgroupFD = cgroupFD
        setupProblem = problem

        mountSteps = Self.mountPlan(for: sandbox)
        paths = mountSteps.map { strdup($0.path) }
        mounts = .allocate(capacity: max(1, mountSteps.count))
        for (index, step) in mountSteps.enumerated() {
            mounts[index] = sw_mount_step(op: step.operation.rawValue, path: paths[index], optional: step.optional ? 1 : 0)
        }

        if sandbox.usesSeccomp {
            let architecture = SyscallNumbers.Architecture.native
            let program = SeccompFilter(
                mode: SeccompFilter.mode(for: sandbox.systemCallFilter, on: architecture), architecture: architecture)
            let buffer = UnsafeMutableBufferPointer<sw_bpf_insn>.allocate(capacity: program.instructions.count)
            for (index, instruction) in program.instructions.enumerated() {
                buffer[index] = sw_bpf_insn(code: instruction.code, jt: instruction.jt, jf: instruction.jf, k: instruction.k)
            }
            filter = buffer
        } else {
            filter = nil
        }

        pointer = .allocate(capacity: 1)
        var plan = sw_sandbox()
        plan.cgroup_procs_fd = cgroupFD
        plan.new_mount_namespace = sandbox.needsMountNamespace ? 1 : 0
        plan.mounts = UnsafePointer(mounts.baseAddress)
        plan.n_mounts = Int32(mountSteps.count)
        plan.new_network_namespace = sandbox.privateNetwork ? 1 : 0
        plan.set_capabilities = sandbox.capabilities == nil ? 0 : 1
        plan.capabilities = sandbox.capabilities?.bits ?? 0
        plan.last_capability = Int32(Capabilities.lastCapability)
        plan.no_new_privileges = Self.needsNoNewPrivileges(sandbox, credentials: credentials) ? 1 : 0
        plan.filter = filter.map { UnsafePointer($0.baseAddress!) }
        plan.filter_length = UInt16(filter?.count ?? 0)
        pointer.initialize(to: plan)
    }

    deinit {
        pointer.deallocate()
        mounts.deallocate()
        filter?.deallocate()
        for path in paths { free(path) }
        if cgroupFD >= 0 { close(cgroupFD) }
    }
}
