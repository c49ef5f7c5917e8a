package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procSample is what /proc says about the server process at one moment.
type procSample struct {
	CPUSeconds float64 `json:"cpu_s"`
	RSSKiB     int64   `json:"rss_kib"`
	PeakKiB    int64   `json:"peak_rss_kib"`
	Threads    int64   `json:"threads"`
}

const clockTicks = 100 // USER_HZ on Linux

// selfCPU is this process's CPU time: a load generator that used its whole
// core measured itself, not the server.
func selfCPU() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
}

func sampleProc(pid int) procSample {
	var s procSample
	if pid <= 0 {
		return s
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// Fields after the parenthesised command: utime is the 14th, stime 15th.
		rest := string(stat)[strings.LastIndexByte(string(stat), ')')+2:]
		f := strings.Fields(rest)
		utime, _ := strconv.ParseFloat(f[11], 64)
		stime, _ := strconv.ParseFloat(f[12], 64)
		s.CPUSeconds = (utime + stime) / clockTicks
	}
	if file, err := os.Open(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		defer file.Close()
		scan := bufio.NewScanner(file)
		for scan.Scan() {
			key, value, ok := strings.Cut(scan.Text(), ":")
			if !ok {
				continue
			}
			n, _ := strconv.ParseInt(strings.Fields(value + " 0")[0], 10, 64)
			switch key {
			case "VmRSS":
				s.RSSKiB = n
			case "VmHWM":
				s.PeakKiB = n
			case "Threads":
				s.Threads = n
			}
		}
	}
	return s
}
