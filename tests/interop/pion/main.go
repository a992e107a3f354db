// A WHEP player on pion/webrtc v3 (the Go stack go2rtc, and so Frigate and Home Assistant, and
// MediaMTX pull WHEP streams with), not written by this project, against rtcam:
//
//	pion-whep URL TOKEN [-audio=true] [-restart=true] [-units N] [-timeout D]
//
// Offers video (and with -audio, audio) recvonly with its candidates gathered first, as go2rtc
// does, puts the H.264 RTP back together into access units (RFC 6184, pion's depacketizer),
// and with -restart then restarts ICE the WHEP way (PATCH, If-Match: "*", new ICE credentials;
// the answer's new credentials and candidates replace the old ones) and waits for access units
// after it; then DELETEs. Prints one JSON line; exit 0 when the run completed, 1 otherwise (the
// reason in "error"). Judging the numbers is the caller's job (tests/interop.rs).
//
// pion 3.1 cannot restart ICE on a connection with a refused m-line (CreateOffer fails with
// "excessive retries"), so a restart needs -audio=false: rtcam refuses audio with port 0.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v3"
	"github.com/pion/webrtc/v3/pkg/media/samplebuilder"
)

type report struct {
	OK             bool   `json:"ok"`
	Error          string `json:"error,omitempty"`
	Status         int    `json:"status"`
	AnswerAudio    string `json:"answer_audio,omitempty"`
	Units          int    `json:"units"`
	IDRs           int    `json:"idrs"`
	SPS            int    `json:"sps"`
	FirstUnitMs    int64  `json:"first_unit_ms"`
	RestartStatus  int    `json:"restart_status"`
	ETagChanged    bool   `json:"etag_changed"`
	UnitsAfter     int    `json:"units_after_restart"`
	AfterRestartMs int64  `json:"after_restart_ms"`
	Delete         int    `json:"delete"`
}

type counter struct {
	sync.Mutex
	units, idrs, sps int
	first            time.Time
}

func main() {
	units := flag.Int("units", 30, "H.264 access units to receive before and after the restart")
	timeout := flag.Duration("timeout", 30*time.Second, "for the whole run")
	audio := flag.Bool("audio", true, "offer audio recvonly too, as go2rtc does")
	restart := flag.Bool("restart", true, "restart ICE by PATCH after the first access units")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: pion-whep URL TOKEN [-units N] [-timeout D]")
		os.Exit(2)
	}
	r := report{}
	err := play(flag.Arg(0), flag.Arg(1), *units, *audio, *restart, time.Now().Add(*timeout), &r)
	if err != nil {
		r.Error = err.Error()
	} else {
		r.OK = true
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
	if !r.OK {
		os.Exit(1)
	}
}

func request(method, target, token, contentType, ifMatch, body string) (*http.Response, string, error) {
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	client := http.Client{Timeout: 10 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	text, err := io.ReadAll(res.Body)
	return res, string(text), err
}

// The ICE lines of an SDP: credentials and candidates, as a WHEP PATCH fragment carries them.
func iceLines(sdp string) (ufrag, pwd string, candidates []string) {
	for _, l := range strings.Split(sdp, "\r\n") {
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:") && ufrag == "":
			ufrag = l
		case strings.HasPrefix(l, "a=ice-pwd:") && pwd == "":
			pwd = l
		case strings.HasPrefix(l, "a=candidate:") && strings.Contains(l, " 1 udp "):
			candidates = append(candidates, l)
		}
	}
	return
}

// The first answer with the restart's credentials and candidates in place of the old ones.
func answerAfterRestart(answer, fragment string) string {
	ufrag, pwd, candidates := iceLines(fragment)
	var out []string
	for _, l := range strings.Split(strings.TrimRight(answer, "\r\n"), "\r\n") {
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			out = append(out, ufrag)
		case strings.HasPrefix(l, "a=ice-pwd:"):
			out = append(out, pwd)
		case strings.HasPrefix(l, "a=candidate:"), strings.HasPrefix(l, "a=end-of-candidates"):
		case strings.HasPrefix(l, "m="):
			out = append(out, l)
			if len(out) > 0 && !strings.HasPrefix(l, "m=audio 0 ") {
				out = append(out, candidates...)
			}
		default:
			out = append(out, l)
		}
	}
	return strings.Join(out, "\r\n") + "\r\n"
}

func waitFor(deadline time.Time, what string, cond func() bool) error {
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out waiting for " + what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func play(endpoint, token string, want int, audio, restart bool, deadline time.Time, r *report) error {
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer pc.Close()
	recv := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}
	if _, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, recv); err != nil {
		return err
	}
	if audio {
		if _, err = pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, recv); err != nil {
			return err
		}
	}
	var c counter
	pc.OnTrack(func(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		if !strings.EqualFold(track.Codec().MimeType, webrtc.MimeTypeH264) {
			return
		}
		// A lost packet holds the builder back until this many later ones have come: pion
		// 3.1 drops retransmissions (it has no RTX), so keep it short.
		builder := samplebuilder.New(64, &codecs.H264Packet{}, track.Codec().ClockRate)
		for {
			packet, _, err := track.ReadRTP()
			if err != nil {
				return
			}
			builder.Push(packet)
			for s := builder.Pop(); s != nil; s = builder.Pop() {
				idr, sps := nalTypes(s.Data)
				c.Lock()
				if c.units == 0 {
					c.first = time.Now()
				}
				c.units++
				if idr {
					c.idrs++
				}
				if sps {
					c.sps++
				}
				c.Unlock()
			}
		}
	})
	unitCount := func() int { c.Lock(); defer c.Unlock(); return c.units }

	offer, err := gatheredOffer(pc, nil)
	if err != nil {
		return err
	}
	posted := time.Now()
	res, answer, err := request("POST", endpoint, token, "application/sdp", "", offer)
	if err != nil {
		return err
	}
	r.Status = res.StatusCode
	if res.StatusCode != http.StatusCreated {
		return fmt.Errorf("POST answered %d: %s", res.StatusCode, strings.TrimSpace(answer))
	}
	for _, l := range strings.Split(answer, "\r\n") {
		if strings.HasPrefix(l, "m=audio") {
			r.AnswerAudio = l
		}
	}
	base, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	location, err := base.Parse(res.Header.Get("Location"))
	if err != nil || res.Header.Get("Location") == "" {
		return fmt.Errorf("no usable Location: %q", res.Header.Get("Location"))
	}
	etag := res.Header.Get("ETag")
	if err = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		return fmt.Errorf("the answer: %w", err)
	}
	if err = waitFor(deadline, fmt.Sprintf("%d access units", want), func() bool { return unitCount() >= want }); err != nil {
		return err
	}
	c.Lock()
	r.FirstUnitMs = c.first.Sub(posted).Milliseconds()
	c.Unlock()

	if restart {
		if err = restartICE(pc, location.String(), token, answer, etag, want, deadline, &c, r); err != nil {
			return err
		}
	}
	c.Lock()
	r.Units, r.IDRs, r.SPS = c.units, c.idrs, c.sps
	c.Unlock()

	res, _, err = request("DELETE", location.String(), token, "", "", "")
	if err != nil {
		return err
	}
	r.Delete = res.StatusCode
	return nil
}

// An offer applied locally, returned once ICE gathering is complete (candidates in it), as
// players that do not trickle send it.
func gatheredOffer(pc *webrtc.PeerConnection, options *webrtc.OfferOptions) (string, error) {
	offer, err := pc.CreateOffer(options)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err = pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	<-gathered
	return pc.LocalDescription().SDP, nil
}

// An ICE restart, as a client does when its network changes.
func restartICE(pc *webrtc.PeerConnection, resource, token, answer, etag string, want int, deadline time.Time, c *counter, r *report) error {
	unitCount := func() int { c.Lock(); defer c.Unlock(); return c.units }
	offer, err := gatheredOffer(pc, &webrtc.OfferOptions{ICERestart: true})
	if err != nil {
		return err
	}
	ufrag, pwd, candidates := iceLines(offer)
	fragment := ufrag + "\r\n" + pwd + "\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" +
		strings.Join(candidates, "\r\n") + "\r\na=end-of-candidates\r\n"
	before := unitCount()
	restarted := time.Now()
	res, theirs, err := request("PATCH", resource, token, "application/trickle-ice-sdpfrag", "*", fragment)
	if err != nil {
		return err
	}
	r.RestartStatus = res.StatusCode
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("the restart PATCH answered %d: %s", res.StatusCode, strings.TrimSpace(theirs))
	}
	r.ETagChanged = res.Header.Get("ETag") != "" && res.Header.Get("ETag") != etag
	if err = pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answerAfterRestart(answer, theirs)}); err != nil {
		return fmt.Errorf("the restart's answer: %w", err)
	}
	if err = waitFor(deadline, "ICE connected after the restart", func() bool {
		return pc.ICEConnectionState() == webrtc.ICEConnectionStateConnected || pc.ICEConnectionState() == webrtc.ICEConnectionStateCompleted
	}); err != nil {
		return err
	}
	if err = waitFor(deadline, fmt.Sprintf("%d access units after the restart", want), func() bool { return unitCount() >= before+want }); err != nil {
		return err
	}
	r.AfterRestartMs = time.Since(restarted).Milliseconds()
	r.UnitsAfter = unitCount() - before
	return nil
}

// Whether an access unit (Annex B, as pion's depacketizer writes it) holds an IDR slice and an
// SPS.
func nalTypes(unit []byte) (idr, sps bool) {
	for i := 0; i+3 < len(unit); i++ {
		if unit[i] == 0 && unit[i+1] == 0 && unit[i+2] == 1 {
			switch unit[i+3] & 0x1f {
			case 5:
				idr = true
			case 7:
				sps = true
			}
		}
	}
	return
}
