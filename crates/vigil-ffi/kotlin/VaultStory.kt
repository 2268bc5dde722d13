// A resident app's story, in brief, through the generated Kotlin bindings
// of vigil-ffi (uniffi.vigil_ffi), run on the JVM with nothing but JNA:
// the key store is Kotlin code, readings come typed and as a wristband's raw
// GATT bytes, and hostile input (NaN, truncated packets, a key store that
// throws or returns garbage) must come back as typed exceptions, never a
// crash. crates/vigil-ffi/test-bindings compiles and runs it.
//
// Each step is a small named function over one Story; a failed check
// throws, the run stops there and the program exits 1. The network story
// (NodeStory.kt) follows when VIGIL_NODE_BIN names a vigil-node binary.

import java.io.File
import java.nio.file.Files
import java.time.Instant
import kotlin.system.exitProcess
import uniffi.vigil_ffi.KeyStore
import uniffi.vigil_ffi.KeyStoreException
import uniffi.vigil_ffi.Metric
import uniffi.vigil_ffi.OpenException
import uniffi.vigil_ffi.Reading
import uniffi.vigil_ffi.Vault
import uniffi.vigil_ffi.WriteException

const val DAY_MS = 86_400_000L

/** What the app's key store does on `load` (the honest one, or a bug). */
enum class Behaviour { HONEST, THROWS, LOCKED, SHORT_KEY }

/**
 * What an app's Android Keystore wrapper does, in a map in memory: one
 * 32-byte root key per vault slot, never overwritten.
 */
class MemoryKeyStore(private val slot: String) : KeyStore {
    private val keys = HashMap<String, ByteArray>()
    var behaviour = Behaviour.HONEST

    override fun load(): ByteArray? = when (behaviour) {
        Behaviour.HONEST -> keys[slot]?.copyOf()
        // A bug in the app: not a KeyStoreException.
        Behaviour.THROWS -> throw IllegalStateException("keystore wrapper bug: slot $slot vanished")
        // The platform keystore refuses, as the binding says it should.
        Behaviour.LOCKED -> throw KeyStoreException.Io("device locked")
        // A truncated entry: 31 bytes instead of 32.
        Behaviour.SHORT_KEY -> keys[slot]?.copyOf(31)
    }

    override fun store(root: ByteArray) {
        if (keys.containsKey(slot)) throw KeyStoreException.Occupied(slot)
        keys[slot] = root.copyOf()
    }

    override fun destroyKey() {
        keys.remove(slot)?.fill(0)
    }

    fun storedKeyCopy(): ByteArray? = keys[slot]?.copyOf()
}

/** The story's state, carried from step to step. */
class Story(val root: File) {
    val keys = MemoryKeyStore("vigil-root")
    val startMs = System.currentTimeMillis() - DAY_MS
    var vault: Vault? = null
    val recorded = ArrayList<Reading>()
    val dir: String get() = File(root, "vault").path

    fun vault(): Vault = vault ?: fail("no open vault")
}

class CheckFailed(message: String) : Exception(message)

fun fail(message: String): Nothing = throw CheckFailed(message)

fun check(ok: Boolean, what: () -> String) {
    if (!ok) fail(what())
}

/** Runs `block`, which must throw an E; returns it for further checks. */
inline fun <reified E : Throwable> expectThrows(what: String, block: () -> Unit): E {
    try {
        block()
    } catch (e: Throwable) {
        if (e is E) return e
        fail("$what: expected ${E::class.simpleName}, got ${e::class.qualifiedName}: ${e.message}")
    }
    fail("$what: expected ${E::class.simpleName}, nothing was thrown")
}

fun hex(s: String): ByteArray = s.split(" ").map { it.toInt(16).toByte() }.toByteArray()

// The widely used public example of a Temperature Measurement (0x2A1C):
// °C, time stamp and type present; FLOAT 3760 x 10^-2 = 37.60 °C at
// 2012-12-05 11:50:27, finger (type 4).
val PUBLIC_EXAMPLE = hex("06 B0 0E 00 FE DC 07 0C 05 0B 32 1B 04")
val PUBLIC_EXAMPLE_AT: Long = Instant.parse("2012-12-05T11:50:27Z").toEpochMilli()

// --- the steps --------------------------------------------------------------

fun createVault(s: Story): String {
    val vault = Vault.create(s.dir, s.startMs, 7u, s.keys)
    s.vault = vault
    val key = s.keys.storedKeyCopy() ?: fail("create stored no root key in the app's key store")
    check(key.size == 32) { "root key of ${key.size} bytes" }
    return "root key of ${key.size} bytes in the app's key store"
}

fun recordTemperature(s: Story): String {
    val at = s.startMs + 60_000
    val id = s.vault().record(Metric.BODY_TEMPERATURE, 37.2, at)
    s.recorded.add(Reading(id, at, Metric.BODY_TEMPERATURE, 37.2))
    return "37.2 °C as $id"
}

fun recordGattPacket(s: Story): String {
    val got = s.vault().recordGatt(0x2A1Cu, PUBLIC_EXAMPLE, s.startMs + 120_000)
    check(got.size == 1) { "expected one reading, got $got" }
    val r = got[0]
    check(r.metric == Metric.BODY_TEMPERATURE) { "metric ${r.metric}" }
    check(Math.abs(r.value - 37.6) < 1e-9) { "value ${r.value}, expected 37.60" }
    // The packet's own time stamp (UTC), not the time it was received.
    check(r.timeMs == PUBLIC_EXAMPLE_AT) { "time ${r.timeMs}, expected $PUBLIC_EXAMPLE_AT" }
    s.recorded.add(r)
    return "0x2A1C ${PUBLIC_EXAMPLE.size} bytes -> %.2f °C at %s".format(r.value, Instant.ofEpochMilli(r.timeMs))
}

fun readLogAndStatus(s: Story): String {
    val log = s.vault().log()
    val expected = s.recorded.sortedBy { it.timeMs }
    check(log == expected) { "log $log, expected $expected" }
    val status = s.vault().status()
    check(status.readings == 2UL) { "status counts ${status.readings} readings" }
    check(status.periodStartMs == s.startMs) { "period start ${status.periodStartMs}" }
    check(status.periodEndMs == s.startMs + 7 * DAY_MS) { "period end ${status.periodEndMs}" }
    check(status.vaultId.isNotEmpty() && status.deviceId.isNotEmpty()) { "empty ids in $status" }
    return "${log.size} readings, vault ${status.vaultId.take(8)}…, device ${status.deviceId.take(8)}…"
}

fun nanIsRefused(s: Story): String {
    val e = expectThrows<WriteException.Invalid>("record NaN") {
        s.vault().record(Metric.BODY_TEMPERATURE, Double.NaN, s.startMs + 180_000)
    }
    check(e.code == "not-finite") { "code ${e.code}" }
    check(s.vault().log().size == 2) { "the refused NaN changed the log" }
    return "WriteException.Invalid(code=${e.code}), nothing recorded"
}

fun truncatedPacketIsRefused(s: Story): String {
    // The same public example without its last byte (the type it announces).
    val e = expectThrows<WriteException.Gatt>("record a truncated packet") {
        s.vault().recordGatt(0x2A1Cu, PUBLIC_EXAMPLE.copyOf(PUBLIC_EXAMPLE.size - 1), s.startMs)
    }
    check(e.code == "truncated") { "code ${e.code}" }
    val unknown = expectThrows<WriteException.Gatt>("record an unknown characteristic") {
        s.vault().recordGatt(0xFFFFu, PUBLIC_EXAMPLE, s.startMs)
    }
    check(unknown.code == "unknown-characteristic") { "code ${unknown.code}" }
    check(s.vault().log().size == 2) { "a refused packet changed the log" }
    return "WriteException.Gatt(code=${e.code}), (code=${unknown.code}), nothing recorded"
}

fun closeVault(s: Story): String {
    s.vault().close()
    s.vault = null
    return "closed"
}

fun keyStoreThatThrows(s: Story): String {
    s.keys.behaviour = Behaviour.THROWS
    val bug = expectThrows<OpenException.KeyStore>("open with a key store that throws") {
        Vault.open(s.dir, s.keys).close()
    }
    val source = bug.source
    check(source is KeyStoreException.Io && source.detail.contains("slot vigil-root vanished")) {
        "the app's exception is not reported: $source"
    }
    s.keys.behaviour = Behaviour.LOCKED
    val locked = expectThrows<OpenException.KeyStore>("open with a locked key store") {
        Vault.open(s.dir, s.keys).close()
    }
    // The library wraps the app's error in its own I/O error: the text stays.
    check((locked.source as? KeyStoreException.Io)?.detail?.contains("device locked") == true) {
        "got ${locked.source}"
    }
    return "IllegalStateException and KeyStoreException.Io both -> OpenException.KeyStore"
}

fun keyOfWrongLength(s: Story): String {
    s.keys.behaviour = Behaviour.SHORT_KEY
    val e = expectThrows<OpenException.KeyStore>("open with a 31-byte key") {
        Vault.open(s.dir, s.keys).close()
    }
    val source = e.source
    check(source is KeyStoreException.Corrupt && source.detail.contains("31 bytes")) { "got $source" }
    return "OpenException.KeyStore(KeyStoreException.Corrupt: ${source.message})"
}

fun occupiedKeyStoreIsKept(s: Story): String {
    s.keys.behaviour = Behaviour.HONEST
    val before = s.keys.storedKeyCopy()
    val e = expectThrows<OpenException.KeyStore>("create a second vault over a stored key") {
        Vault.create(File(s.root, "second").path, s.startMs, 7u, s.keys).close()
    }
    check(e.source is KeyStoreException.Occupied) { "got ${e.source}" }
    check(s.keys.storedKeyCopy().contentEquals(before)) { "the first vault's root key was overwritten" }
    return "OpenException.KeyStore(Occupied), first key untouched"
}

fun reopenWithTheRightKey(s: Story): String {
    s.keys.behaviour = Behaviour.HONEST
    val vault = Vault.open(s.dir, s.keys)
    s.vault = vault
    val log = vault.log()
    check(log == s.recorded.sortedBy { it.timeMs }) { "after reopening: $log" }
    return "${log.size} readings back, unchanged"
}

val STEPS: List<Pair<String, (Story) -> String>> = listOf(
    "create a vault, root key in a Kotlin key store" to ::createVault,
    "record a temperature" to ::recordTemperature,
    "record_gatt the public 0x2A1C example" to ::recordGattPacket,
    "read the log and status" to ::readLogAndStatus,
    "NaN is a typed WriteException" to ::nanIsRefused,
    "malformed GATT packets are typed WriteExceptions" to ::truncatedPacketIsRefused,
    "close the vault" to ::closeVault,
    "a key store whose load throws is an error, not a crash" to ::keyStoreThatThrows,
    "a key of the wrong length is a corrupt store" to ::keyOfWrongLength,
    "create refuses to overwrite a stored key" to ::occupiedKeyStoreIsKept,
    "reopen with the right key" to ::reopenWithTheRightKey,
)

/** Runs `steps` in order; stops at the first failure. Returns (passed, failed). */
fun <S> runSteps(steps: List<Pair<String, (S) -> String>>, state: S): Pair<Int, Int> {
    var passed = 0
    for ((name, step) in steps) {
        try {
            println("ok   $name: ${step(state)}")
            passed++
        } catch (e: Throwable) {
            // One failure ends the story: later steps build on this one.
            println("FAIL $name: ${e::class.qualifiedName}: ${e.message}")
            return passed to 1
        }
    }
    return passed to 0
}

fun main() {
    val root = Files.createTempDirectory("vigil-kotlin-story").toFile()
    val story = Story(root)
    var passed: Int
    var failed: Int
    try {
        val (p, f) = runSteps(STEPS, story)
        passed = p
        failed = f
    } finally {
        story.vault?.close()
    }
    val bin = System.getenv("VIGIL_NODE_BIN")
    var total = STEPS.size
    if (failed == 0 && bin.isNullOrEmpty()) {
        println("skip the network story: VIGIL_NODE_BIN is not set (test-bindings sets it)")
    } else if (failed == 0) {
        total += NODE_STEPS.size
        var nodeStory: NodeStory? = null
        try {
            nodeStory = NodeStory(root, bin!!)
            val (p, f) = runSteps(NODE_STEPS, nodeStory)
            passed += p
            failed += f
        } catch (e: Throwable) {
            println("FAIL start vigil-node serve: ${e::class.qualifiedName}: ${e.message}")
            failed++
        } finally {
            nodeStory?.node?.stop()
        }
    }
    root.deleteRecursively()
    val skipped = total - passed - failed
    println("kotlin: $passed passed, $failed failed" + if (skipped > 0) ", $skipped skipped" else "")
    if (failed > 0) exitProcess(1)
}
