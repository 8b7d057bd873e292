# The lsctl language for a real tclsh: the commands of namespace lsdn.
#
# lsctl (src/lsctl/run.ts) starts
#     tclsh prelude.tcl REQUEST-FIFO RESPONSE-FIFO SCRIPT ARGS...
# This file defines the commands, then sources SCRIPT with $argv0 = SCRIPT and $argv = ARGS.
# Every command parses its Tcl-style options here, checks where it is used (scopes), and
# sends one request to the Node process, which holds the netmodel:
#   request  (one line of JSON, Tcl -> Node):
#       {"cmd":"virt","opts":{"-name":"x"},"args":[],"ctx":{"net":"1"},"loc":{"file":"s.lsctl","line":7}}
#   response (Node -> Tcl): frames "KIND LENGTH\n" followed by LENGTH bytes of UTF-8, where
#       KIND is "out" or "err" (text to print on stdout/stderr, any number of them), then one
#       "ok" (the command's result) or "error" (the message of the Tcl error to raise).
# A body ({...}) is evaluated in the caller's frame with the enclosing object as context.

namespace eval ::lsdn {
    namespace export settings net phys virt attach detach claimLocal rule rate flushVr \
        validate commit cleanup free show context

    # Stack of the bodies being evaluated: dicts with kind (net|phys|virt), name, net (of a
    # virt), level (info frame level of the command owning the body), and when the body's
    # place in its file is known: file, base (line of the body's first line), body.
    variable scopes {}
    # Where errors were raised: errors of lsdn commands carry the error code {LSDN N} and are
    # located in errLocs(N); other errors in a body by the innermost lsdn command around them,
    # as {errorInfo location} in tclErrLoc (the errorInfo identifies the error).
    variable errCount 0
    variable errLocs
    array set errLocs {}
    variable tclErrLoc {}

    variable jsonMap [list \\ \\\\ \" \\\"]
    for {set i 0} {$i < 32} {incr i} {
        lappend jsonMap [format %c $i] [format \\u%04x $i]
    }
    unset i

    variable types {direct vlan vxlan/mcast vxlan/e2e vxlan/static geneve geneve/e2e vxvde}
    # Options of `settings` by type (-name for every type).
    variable settingsOpts [dict create \
        direct {} vlan {} \
        vxlan/mcast {-mcastIp -port -ttl} \
        vxlan/e2e {-port} vxlan/static {-port} geneve {-port} geneve/e2e {-port} \
        vxvde {-mcastIp -port -vni -ttl -if}]

    # Where each command may be used: the kind of the innermost body (root: none).
    variable allowed [dict create \
        settings root context root validate root commit root cleanup root free root show root \
        net {root phys} phys {root net} virt {root net phys} \
        attach {root net phys} detach {root net phys} claimLocal {root phys} \
        rule virt rate virt flushVr virt]
}

# --- helpers ----------------------------------------------------------------------------------

proc ::lsdn::Fail {msg} {
    return -code error -errorcode LSDN $msg
}

proc ::lsdn::JStr {s} {
    variable jsonMap
    return "\"[string map $jsonMap $s]\""
}

# A JSON object from a dict whose values are JSON texts already.
proc ::lsdn::JObj {d} {
    set parts {}
    dict for {k v} $d { lappend parts "[JStr $k]:$v" }
    return "\{[join $parts ,]\}"
}

proc ::lsdn::JArr {items} {
    set parts {}
    foreach i $items { lappend parts [JStr $i] }
    return "\[[join $parts ,]\]"
}

# The file name to show for a file Tcl reports (normalized): as given on the command line for
# the script itself, else relative to the working directory when inside it.
proc ::lsdn::ShowPath {f} {
    variable scriptNorm
    variable scriptGiven
    if {$f eq $scriptNorm} { return $scriptGiven }
    set cwd [pwd]
    if {[string first "$cwd/" $f] == 0} { return [string range $f [string length $cwd]+1 end] }
    return $f
}

# The file name to show for a file name Tcl reports in errorInfo (not normalized).
proc ::lsdn::ShowFile {f} {
    return [ShowPath [file normalize $f]]
}

# Does line LINE of BODY hold the (first line of the) command CMD?
proc ::lsdn::LineHolds {body line cmd} {
    set text [lindex [split $body \n] [expr {$line - 1}]]
    set first [string trim [lindex [split $cmd \n] 0]]
    return [expr {$first ne "" && [string first $first $text] >= 0}]
}

# Location of the command invoked at info-frame level LEVEL: {file line exact}, or {} when
# unknown. Commands in a body of an lsdn command are located through that body's place in its
# file; commands in procs by the place the proc was called from.
proc ::lsdn::Where {level} {
    variable scopes
    set k $level
    while {$k >= 1} {
        set f [info frame $k]
        if {[dict exists $f file] && [dict exists $f line]} {
            return [list [ShowPath [dict get $f file]] [dict get $f line] [expr {$k == $level}]]
        }
        if {[dict get $f type] eq "eval" && [dict exists $f proc] && [string match ::lsdn::* [dict get $f proc]]} {
            # A command of the innermost body evaluated by an lsdn command below level k.
            set owner {}
            foreach s $scopes { if {[dict get $s level] < $k} { set owner $s } }
            if {$owner ne ""} {
                if {[dict exists $owner base] && [dict exists $f line]
                        && [LineHolds [dict get $owner body] [dict get $f line] [dict get $f cmd]]} {
                    set line [expr {[dict get $owner base] + [dict get $f line] - 1}]
                    return [list [dict get $owner file] $line [expr {$k == $level}]]
                }
                set k [dict get $owner level]
                continue
            }
        }
        incr k -1
    }
    return {}
}

proc ::lsdn::LocText {loc} {
    if {$loc eq ""} { return "" }
    return "[lindex $loc 0]:[lindex $loc 1]: "
}

# Locate an error of an lsdn command; returns its error code.
proc ::lsdn::NoteError {level} {
    variable errCount
    variable errLocs
    incr errCount
    set errLocs($errCount) [Where $level]
    return [list LSDN $errCount]
}

# The location of an error from its return options, when known.
proc ::lsdn::ErrorLoc {opts} {
    variable errLocs
    variable tclErrLoc
    set ec [dict get $opts -errorcode]
    if {[lindex $ec 0] eq "LSDN" && [info exists errLocs([lindex $ec 1])]} { return $errLocs([lindex $ec 1]) }
    set known [lindex $tclErrLoc 0]
    if {$known ne "" && [string first $known [dict get $opts -errorinfo]] == 0} { return [lindex $tclErrLoc 1] }
    return {}
}

# Parse Tcl-style options. SPEC is a dict: option -> kind (str, int, flag, list). Returns
# {OPTS POSITIONALS}; "--" ends the options. A later option replaces an earlier one.
proc ::lsdn::ParseOpts {cmd spec words} {
    set opts [dict create]
    set pos {}
    set n [llength $words]
    for {set i 0} {$i < $n} {incr i} {
        set w [lindex $words $i]
        if {$w eq "--"} {
            lappend pos {*}[lrange $words [expr {$i + 1}] end]
            break
        }
        if {[regexp {^-[A-Za-z]} $w]} {
            if {![dict exists $spec $w]} {
                if {[dict size $spec] == 0} { Fail "$cmd: unknown option \"$w\" ($cmd takes no options)" }
                Fail "$cmd: unknown option \"$w\" ($cmd takes [join [lsort [dict keys $spec]] {, }])"
            }
            set kind [dict get $spec $w]
            if {$kind eq "flag"} {
                dict set opts $w 1
                continue
            }
            if {$i + 1 >= $n} { Fail "$cmd: option $w needs a value" }
            set v [lindex $words [incr i]]
            switch $kind {
                int {
                    if {![regexp {^-?[0-9]+$} $v]} { Fail "$cmd: option $w needs a decimal integer, not \"$v\"" }
                }
                list {
                    if {[catch {llength $v}]} { Fail "$cmd: option $w needs a Tcl list, not \"$v\"" }
                }
            }
            dict set opts $w $v
        } else {
            lappend pos $w
        }
    }
    return [list $opts $pos]
}

proc ::lsdn::Current {kind} {
    variable scopes
    for {set i [llength $scopes]} {[incr i -1] >= 0} {} {
        set s [lindex $scopes $i]
        if {[dict get $s kind] eq $kind} { return $s }
    }
    return {}
}

proc ::lsdn::ScopeKind {} {
    variable scopes
    if {[llength $scopes] == 0} { return root }
    return [dict get [lindex $scopes end] kind]
}

proc ::lsdn::CheckScope {cmd} {
    variable allowed
    set ok [dict get $allowed $cmd]
    set here [ScopeKind]
    if {$here in $ok} return
    set where {}
    foreach k $ok { lappend where [expr {$k eq "root" ? "at the root of the script" : "in a $k body"}] }
    set at [expr {$here eq "root" ? "at the root of the script" : "in a $here body"}]
    Fail "$cmd: not allowed $at ($cmd may only be used [join $where { or }])"
}

# The context a command sees: the enclosing net, phys and virt.
proc ::lsdn::Context {} {
    set ctx [dict create]
    set n [Current net]
    set p [Current phys]
    set v [Current virt]
    if {$n ne ""} { dict set ctx net [JStr [dict get $n name]] }
    if {$p ne ""} { dict set ctx phys [JStr [dict get $p name]] }
    if {$v ne ""} { dict set ctx virt [JArr [list [dict get $v net] [dict get $v name]]] }
    return $ctx
}

# Send one request to Node and wait for its answer.
proc ::lsdn::Request {cmd opts spec args_ loc} {
    variable req
    variable resp
    set o [dict create]
    dict for {k v} $opts {
        dict set o $k [expr {[dict get $spec $k] eq "list" ? [JArr $v] : [JStr $v]}]
    }
    set msg [dict create cmd [JStr $cmd] opts [JObj $o] args [JArr $args_] ctx [JObj [Context]]]
    if {$loc ne ""} {
        dict set msg loc [JObj [dict create file [JStr [lindex $loc 0]] line [lindex $loc 1]]]
    }
    flush stdout
    foreach {kind data} [Exchange $cmd [JObj $msg]] {
        switch -- $kind {
            out { puts -nonewline stdout $data; flush stdout }
            err { puts -nonewline stderr $data; flush stderr }
            ok { return $data }
            error { Fail $data }
            lost { Fail "$cmd: lost the connection to the lsctl process" }
            default { Fail "$cmd: unexpected answer \"$data\" from the lsctl process" }
        }
    }
    Fail "$cmd: lost the connection to the lsctl process"
}

# The I/O of one request (in the master interpreter when the script runs in a safe one): sends
# the JSON line, returns the answer as a list {KIND DATA ...} up to its "ok" or "error" frame.
proc ::lsdn::Exchange {cmd json} {
    variable req
    variable resp
    puts $req $json
    flush $req
    set frames {}
    while 1 {
        if {[gets $resp header] < 0} { return [lappend frames lost {}] }
        lassign $header kind len
        set data [encoding convertfrom utf-8 [read $resp $len]]
        lappend frames $kind $data
        if {$kind ni {out err}} { return $frames }
    }
}

# --- the commands: option specs and checks ----------------------------------------------------
#
# Each Check* proc parses and checks its command's words and returns a dict with opts, spec,
# args (sent to Node), and body (a body to evaluate, when given).

proc ::lsdn::Body {cmd pos max usage} {
    if {[llength $pos] > $max} {
        Fail "$cmd: too many arguments: [lrange $pos $max end] (usage: $usage)"
    }
}

proc ::lsdn::CheckSettings {words} {
    variable types
    variable settingsOpts
    set spec [dict create -name str -mcastIp str -port int -vni int -ttl int -if str -remove flag]
    lassign [ParseOpts settings $spec $words] opts pos
    set usage "settings TYPE \[-name N\] \[-mcastIp IP\] \[-port P\] ..., settings vxvde://GROUP\[/port=P\]... \[-name N\], or settings -remove \[-name N\]"
    if {[dict exists $opts -remove]} {
        foreach o [dict keys $opts] {
            if {$o ni {-remove -name}} { Fail "settings: -remove takes only -name, not $o" }
        }
        if {[llength $pos]} { Fail "settings: -remove takes no type (usage: $usage)" }
        return [dict create opts $opts spec $spec args {}]
    }
    if {[llength $pos] == 0} { Fail "settings: missing the network type: one of [join $types {, }] (usage: $usage)" }
    if {[llength $pos] > 1} { Fail "settings: too many arguments: [lrange $pos 1 end] (usage: $usage)" }
    set type [lindex $pos 0]
    if {[regexp {^[A-Za-z][A-Za-z0-9+.-]*://} $type]} {
        # A type's URL, as VDE writes them (vxvde://GROUP[/port=P][/vni=V][/ttl=T][/if=IF]):
        # the options are the URL's; lsdn (the Node side) parses it.
        foreach o [dict keys $opts] {
            if {$o ne "-name"} { Fail "settings: option $o does not go with a URL (give it in the URL: $type)" }
        }
        return [dict create opts $opts spec $spec args [list $type]]
    }
    if {$type ni $types} { Fail "settings: unknown network type \"$type\" (types: [join $types {, }], or a vxvde:// URL)" }
    set ok [dict get $settingsOpts $type]
    foreach o [dict keys $opts] {
        if {$o ne "-name" && $o ni $ok} {
            Fail "settings: option $o does not apply to type $type (it takes [join [linsert $ok 0 -name] {, }])"
        }
    }
    return [dict create opts $opts spec $spec args [list $type]]
}

proc ::lsdn::CheckNet {words} {
    set spec [dict create -vid int -settings str -phys str -remove flag -mtu int]
    lassign [ParseOpts net $spec $words] opts pos
    set usage "net \[-vid N\] \[-settings S\] \[-phys P\] \[-mtu M\] \[-remove\] NAME \[{BODY}\]"
    if {[llength $pos] == 0} { Fail "net: missing the net's name (usage: $usage)" }
    Body net $pos 2 $usage
    if {[dict exists $opts -phys] && [Current phys] ne ""} {
        Fail "net: -phys is not allowed in a phys body: the net is attached to the enclosing phys"
    }
    if {[dict exists $opts -remove]} {
        foreach o [dict keys $opts] { if {$o ne "-remove"} { Fail "net: -remove takes no other option ($o)" } }
        if {[llength $pos] > 1} { Fail "net: -remove takes no body" }
    }
    return [dict create opts $opts spec $spec args [lrange $pos 0 0] body [lindex $pos 1] hasBody [expr {[llength $pos] > 1}]]
}

proc ::lsdn::CheckPhys {words} {
    set spec [dict create -name str -if str -ip str -net str -remove flag -ifClear flag -ipClear flag -mtu int]
    lassign [ParseOpts phys $spec $words] opts pos
    set usage "phys \[-name N\] \[-if IF\] \[-ip IP\] \[-net NET\] \[-mtu M\] \[-remove\] \[-ifClear\] \[-ipClear\] \[{BODY}\]"
    Body phys $pos 1 $usage
    if {[dict exists $opts -net] && [Current net] ne ""} {
        Fail "phys: -net is not allowed in a net body: the phys is attached to the enclosing net"
    }
    foreach {a b} {-if -ifClear -ip -ipClear} {
        if {[dict exists $opts $a] && [dict exists $opts $b]} { Fail "phys: $a and $b contradict each other" }
    }
    if {[dict exists $opts -remove]} {
        if {![dict exists $opts -name]} { Fail "phys: -remove needs -name (the phys to remove)" }
        foreach o [dict keys $opts] { if {$o ni {-remove -name}} { Fail "phys: -remove takes only -name, not $o" } }
        if {[llength $pos]} { Fail "phys: -remove takes no body" }
    }
    return [dict create opts $opts spec $spec args {} body [lindex $pos 0] hasBody [llength $pos]]
}

proc ::lsdn::CheckVirt {words} {
    set spec [dict create -net str -name str -mac str -phys str -if str -remove flag -macClear flag -ip list -mtu int]
    lassign [ParseOpts virt $spec $words] opts pos
    set usage "virt \[-net NET\] \[-name N\] \[-mac MAC\] \[-phys P\] \[-if IF\] \[-ip ADDRS\] \[-mtu M\] \[-remove\] \[-macClear\] \[{BODY}\]"
    Body virt $pos 1 $usage
    if {[dict exists $opts -net] && [Current net] ne ""} {
        Fail "virt: -net is not allowed in a net body: the virt joins the enclosing net"
    }
    if {[dict exists $opts -phys] && [Current phys] ne ""} {
        Fail "virt: -phys is not allowed in a phys body: the virt is connected to the enclosing phys"
    }
    if {[dict exists $opts -mac] && [dict exists $opts -macClear]} { Fail "virt: -mac and -macClear contradict each other" }
    if {[dict exists $opts -remove]} {
        if {![dict exists $opts -name]} { Fail "virt: -remove needs -name (the virt to remove)" }
        foreach o [dict keys $opts] { if {$o ni {-remove -name -net}} { Fail "virt: -remove takes only -name and -net, not $o" } }
        if {[llength $pos]} { Fail "virt: -remove takes no body" }
    }
    return [dict create opts $opts spec $spec args {} body [lindex $pos 0] hasBody [llength $pos]]
}

proc ::lsdn::CheckAttach {cmd words} {
    set spec [dict create -phys str -net str]
    lassign [ParseOpts $cmd $spec $words] opts pos
    if {[dict exists $opts -net] && [Current net] ne ""} {
        Fail "$cmd: -net is not allowed in a net body: the net is the enclosing one"
    }
    if {[dict exists $opts -phys] && [Current phys] ne ""} {
        Fail "$cmd: -phys is not allowed in a phys body: the phys is the enclosing one"
    }
    return [dict create opts $opts spec $spec args $pos]
}

proc ::lsdn::CheckClaimLocal {words} {
    set spec [dict create -phys str]
    lassign [ParseOpts claimLocal $spec $words] opts pos
    if {[dict exists $opts -phys] && [Current phys] ne ""} {
        Fail "claimLocal: -phys is not allowed in a phys body: the enclosing phys is claimed"
    }
    return [dict create opts $opts spec $spec args $pos]
}

proc ::lsdn::Direction {cmd d} {
    if {$d ni {in out}} { Fail "$cmd: direction must be in or out, not \"$d\"" }
}

proc ::lsdn::CheckRule {words} {
    set usage "rule in|out PRIO drop|accept \[-srcIp NET\] \[-dstIp NET\] \[-srcMac MAC\[/MASK\]\] \[-dstMac MAC\[/MASK\]\] ..."
    if {[llength $words] < 3} { Fail "rule: missing arguments (usage: $usage)" }
    lassign $words dir prio action
    Direction rule $dir
    if {![regexp {^-?[0-9]+$} $prio]} { Fail "rule: the priority must be a decimal integer, not \"$prio\"" }
    if {$action ni {drop accept}} { Fail "rule: the action must be drop (or accept), not \"$action\"" }
    set spec [dict create -srcIp str -dstIp str -srcMac str -dstMac str -proto str -srcPort str -dstPort str -icmpType str]
    lassign [ParseOpts rule $spec [lrange $words 3 end]] opts pos
    if {[llength $pos]} { Fail "rule: unexpected arguments: $pos (usage: $usage)" }
    return [dict create opts $opts spec $spec args [list $dir $prio $action]]
}

proc ::lsdn::CheckRate {words} {
    set usage "rate in|out -avg RATE -burst SIZE \[-burstRate RATE\]"
    if {[llength $words] < 1} { Fail "rate: missing the direction (usage: $usage)" }
    Direction rate [lindex $words 0]
    set spec [dict create -avg str -burst str -burstRate str]
    lassign [ParseOpts rate $spec [lrange $words 1 end]] opts pos
    if {[llength $pos]} { Fail "rate: unexpected arguments: $pos (usage: $usage)" }
    foreach o {-avg -burst} {
        if {![dict exists $opts $o]} { Fail "rate: missing $o (usage: $usage)" }
    }
    return [dict create opts $opts spec $spec args [lrange $words 0 0]]
}

proc ::lsdn::CheckNone {cmd words} {
    lassign [ParseOpts $cmd {} $words] opts pos
    if {[llength $pos]} { Fail "$cmd: takes no arguments (got: $pos)" }
    return [dict create opts {} spec {} args {}]
}

proc ::lsdn::CheckShow {words} {
    set spec [dict create -tcl flag -json flag]
    lassign [ParseOpts show $spec $words] opts pos
    if {[llength $pos]} { Fail "show: unexpected arguments: $pos (usage: show \[-tcl|-json\])" }
    if {[dict exists $opts -tcl] && [dict exists $opts -json]} { Fail "show: give -tcl or -json, not both" }
    return [dict create opts $opts spec $spec args {}]
}

proc ::lsdn::CheckContext {words} {
    lassign [ParseOpts context {} $words] opts pos
    if {[llength $pos] != 1} { Fail "context: usage: context NAME" }
    return [dict create opts {} spec {} args $pos]
}

proc ::lsdn::Check {cmd words} {
    switch -- $cmd {
        settings { return [CheckSettings $words] }
        net { return [CheckNet $words] }
        phys { return [CheckPhys $words] }
        virt { return [CheckVirt $words] }
        attach - detach { return [CheckAttach $cmd $words] }
        claimLocal { return [CheckClaimLocal $words] }
        rule { return [CheckRule $words] }
        rate { return [CheckRate $words] }
        show { return [CheckShow $words] }
        context { return [CheckContext $words] }
        default { return [CheckNone $cmd $words] }
    }
}

# Check and send one command; returns {RESULT SCOPE BODY}: SCOPE is the scope entry to push
# while BODY is evaluated (empty when there is no body).
proc ::lsdn::Prepare {cmd level words} {
    CheckScope $cmd
    set c [Check $cmd $words]
    set loc [Where $level]
    set result [Request $cmd [dict get $c opts] [dict get $c spec] [dict get $c args] $loc]
    if {![dict exists $c hasBody] || ![dict get $c hasBody]} { return [list $result {} {}] }
    set body [dict get $c body]
    set scope [dict create kind $cmd level $level]
    if {$cmd eq "virt"} {
        dict set scope net [lindex $result 0]
        dict set scope name [lindex $result 1]
    } else {
        dict set scope name $result
    }
    # Where the body starts in its file, when the command is located exactly and the body is
    # a literal word of it.
    if {$loc ne "" && [lindex $loc 2]} {
        set text [dict get [info frame $level] cmd]
        set at [string last $body $text]
        if {$at >= 0} {
            set before [string range $text 0 [expr {$at - 1}]]
            set base [expr {[lindex $loc 1] + [regexp -all \n $before]}]
            dict set scope file [lindex $loc 0]
            dict set scope base $base
            dict set scope body $body
        }
    }
    return [list {} $scope $body]
}

# errorInfo of an error raised in the body of CMD: Tcl's "uplevel" frames become the body's.
proc ::lsdn::BodyErrorInfo {cmd opts scope} {
    variable tclErrLoc
    set ei [dict get $opts -errorinfo]
    set line {}
    set at [string last "\n    (\"uplevel\" body line " $ei]
    if {$at >= 0} {
        regexp {body line ([0-9]+)\)} [string range $ei $at end] -> line
        set ei [string range $ei 0 [expr {$at - 1}]]
        append ei "\n    (\"$cmd\" body line $line)"
    }
    if {[ErrorLoc $opts] eq ""} {
        if {$line ne "" && [dict exists $scope base]} {
            set tclErrLoc [list $ei [list [dict get $scope file] [expr {[dict get $scope base] + $line - 1}] 1]]
        } else {
            set tclErrLoc [list $ei [Where [dict get $scope level]]]
        }
    }
    return $ei
}

foreach ::lsdn::cmd {settings net phys virt attach detach claimLocal rule rate flushVr validate commit cleanup free show context} {
    proc ::lsdn::$::lsdn::cmd {args} [string map [list @CMD@ $::lsdn::cmd] {
        set level [expr {[info frame] - 1}]
        if {[catch {::lsdn::Prepare @CMD@ $level $args} plan]} {
            return -code error -errorcode [::lsdn::NoteError $level] $plan
        }
        lassign $plan result scope body
        if {$scope eq ""} { return $result }
        lappend ::lsdn::scopes $scope
        set rc [catch {uplevel 1 $body} res opts]
        set ::lsdn::scopes [lrange $::lsdn::scopes 0 end-1]
        switch -- $rc {
            0 { return $result }
            1 {
                set ei [::lsdn::BodyErrorInfo @CMD@ $opts $scope]
                return -code error -errorcode [dict get $opts -errorcode] -errorinfo $ei $res
            }
            default {
                dict set opts -level [expr {[dict get $opts -level] + 1}]
                return -options $opts $res
            }
        }
    }]
}
unset ::lsdn::cmd

# Runs the script; returns the exit code (errors printed with their location).
proc ::lsdn::RunScript {} {
    variable scriptGiven
    set rc [catch {uplevel #0 [list ::lsdn::TclSource $scriptGiven]} msg opts]
    if {$rc == 1} {
        set ei [dict get $opts -errorinfo]
        set at [string last "\n    invoked from within\n\"::lsdn::TclSource " $ei]
        if {$at >= 0} { set ei [string range $ei 0 [expr {$at - 1}]] }
        # An lsdn command called without `namespace import lsdn::*`: say so.
        set ec [dict get $opts -errorcode]
        if {[lrange $ec 0 2] eq {TCL LOOKUP COMMAND} && [lindex $ec 3] in [namespace eval ::lsdn {namespace export}]} {
            set hint " (the lsctl commands are in namespace lsdn: start the script with `namespace import lsdn::*`)"
            set ei "$msg$hint[string range $ei [string length $msg] end]"
            append msg $hint
        }
        # The message opens errorInfo: print it once, after the location.
        if {[string first $msg $ei] == 0} { set ei [string range $ei [string length $msg] end] }
        set loc [ErrorLoc $opts]
        if {$loc eq "" && [regexp {\(file "([^"]*)" line ([0-9]+)\)} $ei -> f l]} {
            set loc [list [ShowFile $f] $l]
        }
        flush stdout
        puts stderr "[LocText $loc]error: $msg$ei"
        flush stderr
        return 1
    }
    if {$rc == 3 || $rc == 4} {
        puts stderr "error: [expr {$rc == 3 ? "break" : "continue"}] outside of a loop in $scriptGiven"
        return 1
    }
    flush stdout
    return 0
}

# --- running the script -----------------------------------------------------------------------

# `source` resolves a relative path against the directory of the file being sourced first (so
# a script's helper files are found wherever lsctl runs), then against the working directory.
rename ::source ::lsdn::TclSource
proc ::source {args} {
    set file [lindex $args end]
    set here [info script]
    if {$here ne "" && [file pathtype $file] eq "relative"} {
        set near [file join [file dirname $here] $file]
        if {[file exists $near]} { set file $near }
    }
    tailcall ::lsdn::TclSource {*}[lrange $args 0 end-1] $file
}

proc ::lsdn::Main {} {
    variable req
    variable resp
    variable scriptNorm
    variable scriptGiven
    set limit {}
    if {[lindex $::argv 0] eq "-safe"} {
        set limit [lindex $::argv 1]
        set ::argv [lrange $::argv 2 end]
    }
    lassign $::argv reqPath respPath scriptGiven
    set req [open $reqPath w]
    fconfigure $req -encoding utf-8 -translation lf -buffering line
    set resp [open $respPath r]
    fconfigure $resp -translation binary
    set scriptNorm [file normalize $scriptGiven]
    set ::argv0 $scriptGiven
    set ::argv [lrange $::argv 3 end]
    set ::argc [llength $::argv]
    if {$limit ne ""} { SafeMain $limit }
    exit [RunScript]
}

# `lsdn import`: the script runs in a safe interpreter (no exec, open, file, socket, ...) with
# the lsdn commands, whose I/O is aliased to this one, `source` of files in the script's
# directory, exit, argv and a copy of env, for at most LIMIT seconds.
proc ::lsdn::SafeMain {limit} {
    variable scriptGiven
    set s [interp create -safe]
    interp share {} stdin $s
    interp share {} stdout $s
    interp share {} stderr $s
    set f [open [info script] r]
    set text [read $f]
    close $f
    $s eval [string range $text 0 [string first "\n# --- running the script" $text]]
    foreach c {Exchange ShowPath ShowFile} {
        $s eval [list rename ::lsdn::$c {}]
        interp alias $s ::lsdn::$c {} ::lsdn::$c
    }
    interp alias $s ::source {} ::lsdn::SafeSource $s
    interp alias $s ::lsdn::TclSource {} ::lsdn::SafeSource $s
    interp alias $s ::exit {} ::lsdn::SafeExit
    foreach v {argv0 argv argc} { $s eval [list set ::$v [set ::$v]] }
    $s eval [list set ::lsdn::scriptGiven $scriptGiven]
    $s eval [list array set ::env [array get ::env]]
    set end [expr {[clock milliseconds] + round($limit * 1000)}]
    interp limit $s time -seconds [expr {$end / 1000}] -milliseconds [expr {$end % 1000}]
    set rc [catch {$s eval ::lsdn::RunScript} res]
    flush stdout
    if {$rc != 0} {
        if {[clock milliseconds] >= $end || [string match "time limit exceeded*" $res]} {
            puts stderr "import: the script ran longer than $limit s"
        } else {
            puts stderr "error: $res"
        }
        exit 1
    }
    exit $res
}

# `source` in the safe interpreter: relative to the sourcing file, and only files inside the
# script's directory (symbolic links resolved).
proc ::lsdn::SafeSource {s args} {
    variable scriptNorm
    if {[llength $args] != 1 && !([llength $args] == 3 && [lindex $args 0] eq "-encoding")} {
        return -code error {wrong # args: should be "source ?-encoding name? fileName"}
    }
    set file [lindex $args end]
    set dir [file dirname $scriptNorm]
    set here [$s eval {info script}]
    if {[file pathtype $file] eq "relative"} {
        set file [file join [expr {$here ne "" ? [file dirname $here] : $dir}] $file]
    }
    set norm [file dirname [file normalize [file join $file __]]]
    if {[string first "$dir/" $norm] != 0} {
        return -code error "source: \"[lindex $args end]\" is outside the script's directory $dir (lsdn import sources only files next to the script)"
    }
    interp invokehidden $s source {*}[lrange $args 0 end-1] $norm
}

proc ::lsdn::SafeExit {{code 0}} {
    if {![string is integer -strict $code]} { return -code error "expected integer but got \"$code\"" }
    flush stdout
    exit $code
}

::lsdn::Main
