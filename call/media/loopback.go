package media

import (
	"net"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// LoopbackSettingEngine returns a SettingEngine that gathers 127.0.0.1 UDP
// candidates only and stays out of multicast DNS: for tests and demos,
// which must never send beyond loopback.
func LoopbackSettingEngine() *webrtc.SettingEngine {
	se := &webrtc.SettingEngine{}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
	se.SetInterfaceFilter(func(name string) bool { return strings.HasPrefix(name, "lo") })
	return se
}
