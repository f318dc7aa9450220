import Glibc

/// Thread-safe passwd and group lookups (the `_r` variants), done while loading configuration
/// because NSS must not be used between fork and exec.
public enum UserDatabase {
    /// A user as configuration names it.
    public struct User: Hashable, Sendable {
        /// The passwd name, or the number as written when the uid has no passwd entry.
        public var name: String
        public var uid: UInt32
        /// The passwd entry's group; nil for a bare uid that has no passwd entry.
        public var primaryGID: UInt32?

        public init(name: String, uid: UInt32, primaryGID: UInt32?) {
            self.name = name
            self.uid = uid
            self.primaryGID = primaryGID
        }
    }

    /// Looks up a user by name, then by number. A number without a passwd entry is still a valid uid.
    public static func user(_ nameOrID: String) -> User? {
        if let user = user(named: nameOrID) { return user }
        guard let uid = numericID(nameOrID) else { return nil }
        return user(id: uid) ?? User(name: nameOrID, uid: uid, primaryGID: nil)
    }

    /// The passwd entry for `name` (getpwnam_r).
    public static func user(named name: String) -> User? {
        withPasswd { getpwnam_r(name, &$0, $1, $2, &$3) }
    }

    /// The passwd entry for `uid` (getpwuid_r).
    public static func user(id uid: UInt32) -> User? {
        withPasswd { getpwuid_r(uid, &$0, $1, $2, &$3) }
    }

    /// Looks up a group by name, then by number. A number without a group entry is still a valid gid.
    public static func groupID(_ nameOrID: String) -> UInt32? {
        groupID(named: nameOrID) ?? numericID(nameOrID)
    }

    /// The gid of the group called `name` (getgrnam_r).
    public static func groupID(named name: String) -> UInt32? {
        withGroup { getgrnam_r(name, &$0, $1, $2, &$3) }?.gid
    }

    /// The name of group `gid` (getgrgid_r).
    public static func groupName(id gid: UInt32) -> String? {
        withGroup { getgrgid_r(gid, &$0, $1, $2, &$3) }?.name
    }

    /// The supplementary groups `initgroups(user, gid)` would set: `gid` plus every group listing `user`.
    public static func groupList(user: String, gid: UInt32) -> [UInt32] {
        var count: Int32 = 32
        while true {
            var groups = [gid_t](repeating: 0, count: Int(count))
            let capacity = count
            if getgrouplist(user, gid, &groups, &count) >= 0 {
                return Array(groups.prefix(Int(count)))
            }
            // glibc sets `count` to the size needed; grow at least geometrically in case it does not.
            count = max(count, capacity * 2)
        }
    }

    /// A decimal id, for configuration that names users and groups by number.
    static func numericID(_ text: String) -> UInt32? {
        ConfigText.decimal(Substring(text)).flatMap { UInt32(exactly: $0) }
    }

    /// Calls a `getpw*_r` function with a buffer that grows until the entry fits.
    private static func withPasswd(
        _ call: (inout passwd, UnsafeMutablePointer<CChar>, Int, inout UnsafeMutablePointer<passwd>?) -> Int32
    ) -> User? {
        var entry = passwd()
        return withGrowingBuffer { buffer, size in
            var result: UnsafeMutablePointer<passwd>?
            let status = call(&entry, buffer, size, &result)
            guard status == 0 else { return .failed(status) }
            guard result != nil else { return .found(nil) }
            return .found(User(name: String(cString: entry.pw_name), uid: entry.pw_uid, primaryGID: entry.pw_gid))
        }
    }

    /// Calls a `getgr*_r` function with a buffer that grows until the entry fits.
    private static func withGroup(
        _ call: (inout group, UnsafeMutablePointer<CChar>, Int, inout UnsafeMutablePointer<group>?) -> Int32
    ) -> (name: String, gid: UInt32)? {
        var entry = group()
        return withGrowingBuffer { buffer, size in
            var result: UnsafeMutablePointer<group>?
            let status = call(&entry, buffer, size, &result)
            guard status == 0 else { return .failed(status) }
            guard result != nil else { return .found(nil) }
            return .found((String(cString: entry.gr_name), entry.gr_gid))
        }
    }

    private enum LookupStep<Value> {
        case found(Value?)
        case failed(Int32)
    }

    /// Retries with a doubled buffer on ERANGE (large groups need more than sysconf's hint);
    /// any other failure means "no such entry".
    private static func withGrowingBuffer<Value>(
        _ attempt: (UnsafeMutablePointer<CChar>, Int) -> LookupStep<Value>
    ) -> Value? {
        var size = 1024
        while size <= 1 << 24 {
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer { buffer.deallocate() }
            switch attempt(buffer, size) {
            case .found(let value): return value
            case .failed(let status) where status == ERANGE: size *= 2
            case .failed: return nil
            }
        }
        return nil
    }
}
