package conntrack

// TCP flag bits of flow.Key.TCPFlags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
	tcpURG = 0x20
)

// TCP peer states, numbered as OVS's CT_DPIF_TCPS_* so that their order
// means progress. The tracker uses the subset CLOSED, SYN_SENT,
// ESTABLISHED, CLOSING, FIN_WAIT_2, TIME_WAIT.
const (
	TCPClosed      = 0
	TCPListen      = 1
	TCPSynSent     = 2
	TCPSynRecv     = 3
	TCPEstablished = 4
	TCPCloseWait   = 5
	TCPFinWait1    = 6
	TCPClosing     = 7
	TCPLastAck     = 8
	TCPFinWait2    = 9
	TCPTimeWait    = 10
)

var tcpStateNames = [...]string{"CLOSED", "LISTEN", "SYN_SENT", "SYN_RECV", "ESTABLISHED",
	"CLOSE_WAIT", "FIN_WAIT_1", "CLOSING", "LAST_ACK", "FIN_WAIT_2", "TIME_WAIT"}

// tcpInvalidFlags reports flag combinations no TCP sends (OVS
// tcp_invalid_flags): SYN with RST or FIN; neither SYN, ACK nor RST;
// FIN, PSH or URG without ACK.
func tcpInvalidFlags(f uint16) bool {
	if f&tcpSYN != 0 {
		if f&(tcpRST|tcpFIN) != 0 {
			return true
		}
	} else if f&(tcpACK|tcpRST) == 0 {
		return true
	}
	return f&tcpACK == 0 && f&(tcpFIN|tcpPSH|tcpURG) != 0
}

// tcpUpdate advances the peer states of c for a segment with flags f
// (c.mu held). The model is OVS's conntrack-tcp without sequence-window
// checks: each side moves CLOSED -> SYN_SENT (its SYN) -> ESTABLISHED
// (its SYN acked) -> CLOSING (its FIN) -> FIN_WAIT_2 (its FIN acked);
// RST puts both in TIME_WAIT. A side first seen without a SYN (mid-stream
// pickup) starts ESTABLISHED. A pure SYN in the original direction after
// both sides closed reopens the connection (updReopen).
func tcpUpdate(c *conn, f uint16, reply bool) (int, int) {
	if tcpInvalidFlags(f) {
		return updInvalid, 0
	}
	si, di := 0, 1
	if reply {
		si, di = 1, 0
	}
	src, dst := &c.tcp[si], &c.tcp[di]
	if f&(tcpSYN|tcpACK) == tcpSYN && *src >= TCPFinWait2 && *dst >= TCPFinWait2 {
		if !reply {
			return updReopen, 0
		}
		return updInvalid, 0
	}
	if reply {
		c.replySeen = true
	}
	if *src == TCPClosed && f&(tcpSYN|tcpRST) == 0 {
		*src = TCPEstablished
	}
	if f&tcpSYN != 0 && *src < TCPSynSent {
		*src = TCPSynSent
	}
	if f&tcpFIN != 0 && *src < TCPClosing {
		*src = TCPClosing
	}
	if f&tcpACK != 0 {
		switch *dst {
		case TCPSynSent:
			*dst = TCPEstablished
		case TCPClosing:
			*dst = TCPFinWait2
		}
	}
	if f&tcpRST != 0 {
		*src, *dst = TCPTimeWait, TCPTimeWait
	}
	return updValid, tcpTimeout(*src, *dst)
}

// tcpTimeout maps peer states to a timeout class (OVS's mapping).
func tcpTimeout(src, dst uint8) int {
	switch {
	case src >= TCPFinWait2 && dst >= TCPFinWait2:
		return toTCPClosed
	case src >= TCPClosing && dst >= TCPClosing:
		return toTCPFinWait
	case src < TCPEstablished || dst < TCPEstablished:
		return toTCPOpening
	case src >= TCPClosing || dst >= TCPClosing:
		return toTCPClosing
	}
	return toTCPEstablished
}
