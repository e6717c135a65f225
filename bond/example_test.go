package bond_test

import (
	"fmt"
	"time"

	"xvs/bond"
)

func ExampleBucket() {
	mac := [6]byte{0x50, 0x54, 0x00, 0x00, 0x00, 0x01}
	fmt.Println(bond.Bucket(mac, 0, 0), bond.Bucket(mac, 10, 0), bond.Bucket(mac, 0, 7))
	// Output: 144 60 21
}

func ExampleBond_SetCarrier() {
	now := time.Unix(0, 0)
	b, err := bond.New(bond.Config{
		Name: "bond0",
		Mode: bond.ModeBalanceSLB,
		Members: []bond.Member{
			{OfPort: 1, Name: "eth0", Up: true},
			{OfPort: 2, Name: "eth1", Up: true},
		},
		RebalanceInterval: bond.DefaultRebalanceInterval,
	}, now)
	if err != nil {
		panic(err)
	}
	b.Run(now)
	mac := [6]byte{0x50, 0x54, 0x00, 0x00, 0x00, 0x01}
	m, bucket, _ := b.Select(mac, 0)
	fmt.Println("before:", m, bucket)

	b.SetCarrier(m, false, now) // fails over at once
	m2, _, _ := b.Select(mac, 0)
	ev := b.Run(now)
	fmt.Println("after:", m2, ev.Disabled, ev.Moved.Has(bucket), ev.SendLearning)
	// Output:
	// before: 1 144
	// after: 2 [1] true true
}
