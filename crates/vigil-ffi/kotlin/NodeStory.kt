// The network half of the Kotlin story: a real `vigil-node serve` (the
// binary in VIGIL_NODE_BIN, started here), two vaults paired through it,
// a fever from GATT bytes reaching the node's inbox, a conflict between the
// two devices, the exports, and the shred with the node's receipt. The
// steps run after VaultStory.kt's, in the order of NODE_STEPS.

import java.io.File
import java.util.concurrent.TimeUnit
import uniffi.vigil_ffi.Conflict
import uniffi.vigil_ffi.Joiner
import uniffi.vigil_ffi.Metric
import uniffi.vigil_ffi.Node
import uniffi.vigil_ffi.OpenException
import uniffi.vigil_ffi.ReadException
import uniffi.vigil_ffi.Severity
import uniffi.vigil_ffi.Symptom
import uniffi.vigil_ffi.SymptomSeverity
import uniffi.vigil_ffi.SyncException
import uniffi.vigil_ffi.Vault
import uniffi.vigil_ffi.WriteException

const val LABEL = "Ana, flat 12B"
const val TIMEOUT_MS = 5_000u

/** `vigil-node serve` on a free loopback port, and its admin commands. */
class RunningNode(private val bin: String, root: File) {
    private val data = File(root, "node").path
    private val proc: Process = ProcessBuilder(bin, "serve", "--data", data, "--listen", "127.0.0.1:0")
        .redirectError(File(root, "node.log"))
        .start()
    val code: String

    init {
        // serve prints "enrolment code: vigil1/..." once it listens.
        val out = proc.inputStream.bufferedReader()
        var found: String? = null
        while (found == null) {
            val line = out.readLine() ?: fail("vigil-node serve exited before listening (see node.log)")
            if (line.startsWith("enrolment code: ")) found = line.removePrefix("enrolment code: ")
        }
        code = found
        // Keep draining stdout so the node never blocks on a full pipe.
        Thread { out.forEachLine { } }.apply { isDaemon = true }.start()
    }

    fun admin(vararg args: String): String {
        val p = ProcessBuilder(bin, *args, "--data", data).redirectErrorStream(true).start()
        val text = p.inputStream.bufferedReader().readText()
        check(p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0) { "vigil-node ${args.joinToString(" ")}: $text" }
        return text
    }

    /** A new resident's ticket (JSON read with a pattern: no JSON library on the classpath). */
    fun addResident(label: String): String {
        val json = admin("residents", "add", "--label", label, "--json", "--no-qr")
        return Regex("\"ticket\"\\s*:\\s*\"([^\"]+)\"").find(json)?.groupValues?.get(1) ?: fail("no ticket in $json")
    }

    fun stop() {
        proc.destroy() // SIGTERM: the node shuts down cleanly
        if (!proc.waitFor(20, TimeUnit.SECONDS)) proc.destroyForcibly()
    }
}

/** The network story's state. */
class NodeStory(val root: File, bin: String) {
    val node = RunningNode(bin, root)
    val now = System.currentTimeMillis()
    val start = now - 3_600_000
    val phoneKeys = MemoryKeyStore("phone")
    val tabletKeys = MemoryKeyStore("tablet")
    var phone: Vault? = null
    var tablet: Vault? = null
    var phoneNode: Node? = null
    var tabletNode: Node? = null

    fun phone() = phone ?: fail("no phone vault")
    fun tablet() = tablet ?: fail("no tablet vault")
    fun phoneNode() = phoneNode ?: fail("phone not connected")
    fun tabletNode() = tabletNode ?: fail("tablet not connected")
}

/** A Temperature Measurement value: °C, no time stamp, FLOAT tenths x 10^-1. */
fun celsius(tenths: Int) = byteArrayOf(0, tenths.toByte(), (tenths shr 8).toByte(), 0, 0xFF.toByte())

fun enrolWithTicket(n: NodeStory): String {
    val ticket = n.node.addResident(LABEL)
    n.phone = Vault.create(File(n.root, "phone").path, n.start, 7u, n.phoneKeys)
    n.phoneNode = Node.connect(ticket, TIMEOUT_MS)
    val enrolled = n.phone().enrol(n.phoneNode(), null, n.now)
    check(enrolled.grant.label == LABEL) { "grant label ${enrolled.grant.label}" }
    return "phone enrolled; staff see its alerts as \"${enrolled.grant.label}\""
}

fun pairTablet(n: NodeStory): String {
    n.tabletNode = Node.connect(n.node.code, TIMEOUT_MS)
    val joiner = Joiner()
    expectThrows<SyncException.BadJoinerCode>("a mistyped joiner code") {
        n.phone().offerPairing(n.phoneNode(), joiner.joinerCode().dropLast(1) + "x", n.now)
    }
    val phoneShows = n.phone().offerPairing(n.phoneNode(), joiner.joinerCode(), n.now)
    val tabletShows = joiner.fetchOffer(n.tabletNode())
    check(phoneShows == tabletShows) { "codes differ: $phoneShows / $tabletShows" }
    n.tablet = joiner.confirm(n.tabletNode(), File(n.root, "tablet").path, n.tabletKeys)
    check(n.tablet().status().vaultId == n.phone().status().vaultId) { "tablet joined another vault" }
    return "both screens show $phoneShows; tablet joined"
}

fun feverReachesTheInbox(n: NodeStory): String {
    n.phone().recordGatt(0x2A1Cu, celsius(386), n.now - 240_000)
    n.phone().recordGatt(0x2A1Cu, celsius(391), n.now - 120_000)
    val sent = n.phone().sendAlerts(n.phoneNode(), n.now)
    check(sent.delivered == 1UL && sent.pending == 0UL) { "sent $sent" }
    val inbox = n.node.admin("alerts", "--json")
    check(inbox.contains("fever started") && inbox.contains(LABEL)) { "inbox: $inbox" }
    return "1 alert delivered; the node's inbox shows \"fever started\" for $LABEL"
}

fun syncBothWays(n: NodeStory): String {
    n.phone().sync(n.phoneNode())
    n.tablet().sync(n.tabletNode())
    val values = n.tablet().log().map { it.value }
    check(values.containsAll(listOf(38.6, 39.1))) { "tablet log $values" }
    return "the tablet has the phone's ${values.size} readings"
}

fun conflictBetweenDevices(n: NodeStory): String {
    val day = java.time.Instant.ofEpochMilli(n.now).toString().take(10)
    n.phone().checkIn(day, listOf(SymptomSeverity(Symptom.COUGH, Severity.MILD)), n.now)
    n.tablet().checkIn(day, listOf(SymptomSeverity(Symptom.COUGH, Severity.SEVERE)), n.now)
    n.tablet().sync(n.tabletNode())
    n.phone().sync(n.phoneNode())
    val conflicts = n.phone().conflicts()
    val c = conflicts.singleOrNull() as? Conflict.CheckIn ?: fail("conflicts: $conflicts")
    check(c.values.map { it.severity }.toSet() == setOf(Severity.MILD, Severity.SEVERE)) { "values ${c.values}" }
    n.phone().resolveConflict(c.key, "moderate")
    n.phone().sync(n.phoneNode())
    n.tablet().sync(n.tabletNode())
    check(n.tablet().conflicts().isEmpty()) { "tablet still sees ${n.tablet().conflicts()}" }
    return "${c.key}: mild vs severe, resolved to moderate on both"
}

fun exports(n: NodeStory): String {
    val fhir = n.phone().exportFhir(null, false, n.now)
    val observations = Regex("\"resourceType\"\\s*:\\s*\"Observation\"").findAll(fhir).count()
    // Two readings and the resolved check-in answer.
    check(observations == 3) { "FHIR bundle with $observations observations" }
    val subjects = Regex("\"subject\"\\s*:").findAll(fhir).count()
    check(subjects == observations) { "FHIR bundle with $subjects subjects for $observations observations" }
    val doc = n.phone().exportAutomerge()
    check(doc.isNotEmpty()) { "empty Automerge export" }
    return "FHIR bundle of $observations observations, Automerge document of ${doc.size} bytes"
}

fun shredWithNode(n: NodeStory): String {
    val report = n.phone().shredWithNode(n.phoneNode(), n.phoneKeys, n.now)
    val receipt = report.receipt ?: fail("no receipt: ${report.nodeError}")
    check(!report.receiptInvalid) { "the receipt does not verify" }
    check(n.phoneKeys.storedKeyCopy() == null) { "the root key is still in the key store" }
    expectThrows<ReadException.Shredded>("read after the shred") { n.phone().log() }
    expectThrows<WriteException.Shredded>("record after the shred") {
        n.phone().record(Metric.HEART_RATE, 70.0, n.now)
    }
    expectThrows<SyncException.ShreddedElsewhere>("the tablet's next sync") { n.tablet().sync(n.tabletNode()) }
    // Its copy is shredded (and its key destroyed) when the app opens it next.
    expectThrows<OpenException.Shredded>("reopening the tablet's vault") {
        Vault.open(File(n.root, "tablet").path, n.tabletKeys)
    }
    check(n.tabletKeys.storedKeyCopy() == null) { "the tablet's root key is still there" }
    return "receipt: ${receipt.blobs} blobs, ${receipt.grants} grant, ${receipt.devices.size} devices; both keys destroyed"
}

val NODE_STEPS: List<Pair<String, (NodeStory) -> String>> = listOf(
    "enrol with a ticket from a real vigil-node serve" to ::enrolWithTicket,
    "pair a tablet through the node" to ::pairTablet,
    "a fever from GATT bytes reaches the node's inbox" to ::feverReachesTheInbox,
    "sync both ways" to ::syncBothWays,
    "a check-in conflict between the devices, resolved" to ::conflictBetweenDevices,
    "FHIR and Automerge exports" to ::exports,
    "shred with the node" to ::shredWithNode,
)
