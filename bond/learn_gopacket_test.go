package bond

import (
	"bytes"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// TestLearningPacketGopacket checks LearningPacket with an independent
// decoder.
func TestLearningPacketGopacket(t *testing.T) {
	mac := [6]byte{0x02, 0, 0, 0xab, 0xcd, 0xef}
	buf := make([]byte, 64)
	for _, vlan := range []uint16{0, 1, 4094} {
		n := LearningPacket(buf, mac, vlan)
		var eth layers.Ethernet
		if err := eth.DecodeFromBytes(buf[:n], gopacket.NilDecodeFeedback); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(eth.DstMAC, layers.EthernetBroadcast) || !bytes.Equal(eth.SrcMAC, mac[:]) {
			t.Errorf("vlan %d: eth %v -> %v", vlan, eth.SrcMAC, eth.DstMAC)
		}
		payload, etype := eth.Payload, eth.EthernetType
		if vlan != 0 {
			var q layers.Dot1Q
			if etype != layers.EthernetTypeDot1Q {
				t.Fatalf("vlan %d: ethertype %v", vlan, etype)
			}
			if err := q.DecodeFromBytes(payload, gopacket.NilDecodeFeedback); err != nil {
				t.Fatal(err)
			}
			if q.VLANIdentifier != vlan || q.Priority != 0 {
				t.Errorf("vlan %d: tag %d prio %d", vlan, q.VLANIdentifier, q.Priority)
			}
			payload, etype = q.Payload, q.Type
		}
		if etype != 0x8035 {
			t.Fatalf("vlan %d: ethertype %#x, want RARP", vlan, uint16(etype))
		}
		var arp layers.ARP
		if err := arp.DecodeFromBytes(payload, gopacket.NilDecodeFeedback); err != nil {
			t.Fatal(err)
		}
		if arp.Operation != 3 || arp.AddrType != layers.LinkTypeEthernet || arp.Protocol != layers.EthernetTypeIPv4 ||
			!bytes.Equal(arp.SourceHwAddress, mac[:]) || !bytes.Equal(arp.DstHwAddress, mac[:]) ||
			!bytes.Equal(arp.SourceProtAddress, []byte{0, 0, 0, 0}) || !bytes.Equal(arp.DstProtAddress, []byte{0, 0, 0, 0}) {
			t.Errorf("vlan %d: arp %+v", vlan, arp)
		}
	}
}
