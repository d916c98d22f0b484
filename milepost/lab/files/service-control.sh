# ruc_service ACTION: run ACTION (restart or stop) on the service the way this
# host runs services: systemd when it is running; otherwise the init script,
# through invoke-rc.d when a runlevel is known. Without a runlevel (a
# container with no init system) invoke-rc.d skips the action without an
# error, so the init script is run directly. A policy-rc.d that denies the
# action (exit 101) is obeyed.
ruc_service() {
    action=$1
    if [ -x /usr/sbin/policy-rc.d ]; then
        policy=0
        /usr/sbin/policy-rc.d "$NAME" "$action" >/dev/null 2>&1 || policy=$?
        if [ "$policy" -eq 101 ]; then
            echo "$NAME: policy-rc.d denies $action; service left as it is" >&2
            return 0
        fi
    fi
    if [ -d /run/systemd/system ]; then
        systemctl "$action" "$NAME.service"
    elif [ ! -x "/etc/init.d/$NAME" ]; then
        echo "$NAME: /etc/init.d/$NAME is missing; cannot $action the service" >&2
        [ "$action" = stop ]
    elif [ -x /sbin/runlevel ] && /sbin/runlevel >/dev/null 2>&1 \
            && command -v invoke-rc.d >/dev/null 2>&1; then
        invoke-rc.d "$NAME" "$action"
    else
        "/etc/init.d/$NAME" "$action"
    fi
}
