#!/bin/sh
# Entrypoint of the local stand-in for nginx:stable, a small version of the official one:
# when the command is nginx, run the executable /docker-entrypoint.d/*.sh scripts and render
# /etc/nginx/templates/*.template into /etc/nginx/conf.d/ with envsubst (only ${VAR}s that are set).
set -e

if [ "$1" = "nginx" ] || [ "$1" = "nginx-debug" ]; then
    if [ -d /docker-entrypoint.d ]; then
        for f in $(find /docker-entrypoint.d/ -follow -type f -name '*.sh' -print | sort -V); do
            if [ -x "$f" ]; then
                echo "$0: running $f"
                "$f"
            fi
        done
    fi
    template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
    suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
    output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
    if [ -d "$template_dir" ] && command -v envsubst >/dev/null 2>&1; then
        # shellcheck disable=SC2016,SC2046  # a literal ${NAME} list for envsubst, split on purpose
        defined_envs=$(printf '${%s} ' $(env | cut -d= -f1))
        # shellcheck disable=SC2044  # template paths have no spaces (as in the official script)
        for template in $(find "$template_dir" -follow -type f -name "*$suffix" -print); do
            relative_path="${template#"$template_dir/"}"
            output_path="$output_dir/${relative_path%"$suffix"}"
            mkdir -p "$(dirname "$output_path")"
            echo "$0: rendering $template to $output_path"
            envsubst "$defined_envs" < "$template" > "$output_path"
        done
    fi
fi

exec "$@"
